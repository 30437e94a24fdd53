//! The HTTP side of the distribution API: one [`Repo`] per repository spoken to, which authenticates
//! on demand (a `401` with a `WWW-Authenticate` challenge: a Bearer token from the realm, anonymous or
//! with credentials, or Basic), fetches manifests with the right `Accept` list and verifies them, and
//! moves blobs (ranged GETs for resumption, existence checks, cross-repository mounts, uploads).

use std::time::Duration;

use berth_image::manifest::media;
use berth_image::{Digest, Reference};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RANGE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;

use crate::auth::{self, Challenge, Credentials};
use crate::endpoint::Endpoint;

/// Manifests larger than this are refused (containerd's limit too).
pub const MAX_MANIFEST: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request did not get an answer (connection refused, TLS, timeout, a broken body).
    #[error("{method} \"{url}\": {message}")]
    Transport {
        method: String,
        url: String,
        message: String,
    },
    /// The registry answered with an error status; `errors` is its distribution error list, rendered
    /// as docker does (`manifest unknown: manifest unknown`).
    #[error("{}", status_text(*.status, .errors))]
    Status {
        status: u16,
        url: String,
        errors: String,
    },
    #[error("manifest for {reference} not found: {errors}")]
    ManifestNotFound { reference: String, errors: String },
    #[error("{0}")]
    Auth(String),
    #[error("manifest {what} is larger than {MAX_MANIFEST} bytes")]
    ManifestTooLarge { what: String },
    #[error("the registry sent content for {expected} whose digest is {actual}")]
    DigestMismatch { expected: String, actual: Digest },
    #[error("the registry answered {status} to a request for bytes {offset}- of {digest}")]
    BadRange {
        digest: Digest,
        offset: u64,
        status: u16,
    },
    #[error("upload of {digest}: the registry gave no Location")]
    NoLocation { digest: Digest },
}

fn status_text(status: u16, errors: &str) -> String {
    if errors.is_empty() {
        format!(
            "unexpected status from the registry: {status} {}",
            StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
        )
    } else {
        errors.to_string()
    }
}

impl RegistryError {
    /// Worth trying again (a dropped connection, a 5xx, 429).
    pub fn transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

/// The distribution error list (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`) as docker
/// prints it: `manifest unknown: manifest unknown`, several joined by `; `.
pub fn render_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct L {
        errors: Vec<E>,
    }
    match serde_json::from_slice::<L>(body) {
        Ok(l) if !l.errors.is_empty() => l
            .errors
            .iter()
            .map(|e| {
                let code = e
                    .code
                    .as_deref()
                    .unwrap_or("unknown")
                    .to_lowercase()
                    .replace('_', " ");
                match e.message.as_deref() {
                    Some(m) if !m.is_empty() => format!("{code}: {m}"),
                    _ => code,
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    }
}

/// Shared HTTP state: the connection pool and the registries the user allows over plain HTTP.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    insecure: Vec<String>,
}

impl Client {
    pub fn new(insecure: Vec<String>) -> Result<Client, RegistryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| RegistryError::Transport {
                method: "init".into(),
                url: String::new(),
                message: chain(&e),
            })?;
        Ok(Client { http, insecure })
    }

    /// A session with `reference`'s repository; `push` asks for push rights as well as pull.
    pub fn repo(&self, reference: &Reference, creds: Option<Credentials>, push: bool) -> Repo {
        Repo {
            http: self.http.clone(),
            endpoint: Endpoint::for_reference(reference, &self.insecure),
            name: reference.path().to_string(),
            creds,
            actions: if push { "pull,push" } else { "pull" },
            authorization: Default::default(),
        }
    }

    /// Checks `creds` against registry `domain` (what `docker login` does): the `/v2/` ping, then the
    /// challenge it answers with, met with the credentials.
    pub async fn login(&self, domain: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let reference: Reference = format!("{domain}/login-check")
            .parse()
            .map_err(|e| RegistryError::Auth(format!("bad registry address {domain:?}: {e}")))?;
        let repo = self.repo(&reference, Some(creds.clone()), false);
        let url = repo.endpoint.ping_url();
        let resp = repo.raw(Method::GET, &url, &HeaderMap::new(), None).await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => {
                let challenge = challenge_of(&resp)?;
                let value = repo.authorize(&challenge, "").await?;
                let resp = repo
                    .http
                    .get(&url)
                    .header(AUTHORIZATION, value)
                    .send()
                    .await
                    .map_err(|e| transport("GET", &url, &e))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(RegistryError::Auth(
                        "unauthorized: incorrect username or password".into(),
                    ))
                }
            }
            _ => Err(status_error(resp).await),
        }
    }
}

/// The causes of an error, joined (reqwest's top level message alone says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn transport(method: &str, url: &str, e: &reqwest::Error) -> RegistryError {
    RegistryError::Transport {
        method: method.to_string(),
        url: url.to_string(),
        message: chain(e),
    }
}

async fn status_error(resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let url = resp.url().to_string();
    let body = resp.bytes().await.unwrap_or_default();
    RegistryError::Status {
        status,
        url,
        errors: render_errors(&body),
    }
}

fn challenge_of(resp: &Response) -> Result<Challenge, RegistryError> {
    let h = resp
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            RegistryError::Auth("unauthorized: the registry sent no authentication challenge".into())
        })?;
    Challenge::parse(h).map_err(|e| RegistryError::Auth(e.to_string()))
}

/// A manifest or index as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub data: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// A session with one repository of one registry (clones share the authorization).
#[derive(Clone)]
pub struct Repo {
    http: reqwest::Client,
    endpoint: Endpoint,
    name: String,
    creds: Option<Credentials>,
    actions: &'static str,
    /// The `Authorization` value that worked last (a Bearer token or Basic).
    authorization: std::sync::Arc<Mutex<Option<String>>>,
}

impl Repo {
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The repository path (`library/alpine`).
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn raw(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Option<Body>,
    ) -> Result<Response, RegistryError> {
        let mut rb: RequestBuilder = self.http.request(method.clone(), url).headers(headers.clone());
        if let Some(a) = self.authorization.lock().await.clone() {
            rb = rb.header(AUTHORIZATION, a);
        }
        if let Some(b) = body {
            rb = b.apply(rb);
        }
        rb.send().await.map_err(|e| transport(method.as_str(), url, &e))
    }

    /// Meets `challenge`: a token from the realm (with the credentials when there are some) or Basic.
    /// Returns the `Authorization` value.
    async fn authorize(&self, challenge: &Challenge, scope: &str) -> Result<String, RegistryError> {
        match challenge {
            Challenge::Basic { .. } => match &self.creds {
                Some(c) => Ok(c.basic_header()),
                None => Err(RegistryError::Auth("no basic auth credentials".into())),
            },
            Challenge::Bearer { .. } => {
                let url = challenge
                    .token_url(scope)
                    .ok_or_else(|| RegistryError::Auth("bad Bearer challenge".into()))?;
                let mut rb = self.http.get(&url);
                if let Some(c) = &self.creds {
                    rb = rb.header(AUTHORIZATION, c.basic_header());
                }
                let resp = rb.send().await.map_err(|e| transport("GET", &url, &e))?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    let detail = render_errors(&body);
                    return Err(RegistryError::Auth(if status == StatusCode::UNAUTHORIZED {
                        if detail.is_empty() {
                            "unauthorized: incorrect username or password".to_string()
                        } else {
                            detail
                        }
                    } else {
                        format!("token request to {url}: {status} {detail}")
                    }));
                }
                let body = resp.bytes().await.map_err(|e| transport("GET", &url, &e))?;
                let token =
                    auth::token_from_response(&body).map_err(|e| RegistryError::Auth(e.to_string()))?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// Sends a request; on a `401` meets the challenge and sends it once more.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: impl Fn() -> Option<Body>,
    ) -> Result<Response, RegistryError> {
        let resp = self.raw(method.clone(), url, &headers, body()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = challenge_of(&resp)?;
        let scope = format!("repository:{}:{}", self.name, self.actions);
        let value = self.authorize(&challenge, &scope).await?;
        *self.authorization.lock().await = Some(value);
        let resp = self.raw(method, url, &headers, body()).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let body = resp.bytes().await.unwrap_or_default();
            let detail = render_errors(&body);
            return Err(RegistryError::Auth(if detail.is_empty() {
                "unauthorized: authentication required".into()
            } else {
                detail
            }));
        }
        Ok(resp)
    }

    /// Fetches the manifest or index `object` (a tag or a digest) and checks it: by digest when it was
    /// asked by digest, against `Docker-Content-Digest` when the registry sent one.
    pub async fn manifest(&self, object: &str, reference: &str) -> Result<Fetched, RegistryError> {
        let url = self.endpoint.manifest_url(&self.name, object);
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            media::ACCEPT.join(", ").parse().expect("static accept list"),
        );
        let resp = self.send(Method::GET, &url, headers, || None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            let body = resp.bytes().await.unwrap_or_default();
            let mut errors = render_errors(&body);
            if errors.is_empty() {
                errors = "manifest unknown".into();
            }
            return Err(RegistryError::ManifestNotFound {
                reference: reference.to_string(),
                errors,
            });
        }
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let claimed = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<Digest>().ok());
        let data = read_limited(resp, &url, MAX_MANIFEST, object).await?;
        let digest = Digest::of(&data);
        let expected = object.parse::<Digest>().ok().or(claimed);
        if let Some(e) = expected {
            if e != digest {
                return Err(RegistryError::DigestMismatch {
                    expected: e.to_string(),
                    actual: digest,
                });
            }
        }
        Ok(Fetched {
            data,
            media_type,
            digest,
        })
    }

    /// Starts downloading blob `digest` from byte `offset` (redirects are followed). The answer is
    /// `206` for a resumed range; a registry that ignores the range and answers `200` from byte 0 is
    /// reported as [`RegistryError::BadRange`] so the caller can start over.
    pub async fn blob(&self, digest: &Digest, offset: u64) -> Result<Response, RegistryError> {
        let url = self.endpoint.blob_url(&self.name, digest);
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(RANGE, format!("bytes={offset}-").parse().expect("range header"));
        }
        let resp = self.send(Method::GET, &url, headers, || None).await?;
        let status = resp.status();
        if offset > 0 && status == StatusCode::OK {
            return Err(RegistryError::BadRange {
                digest: digest.clone(),
                offset,
                status: 200,
            });
        }
        if !status.is_success() {
            return Err(status_error(resp).await);
        }
        Ok(resp)
    }

    /// The repository's tags (`GET /v2/<name>/tags/list`, following `Link` pages).
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = format!("{}/v2/{}/tags/list", self.endpoint.base(), self.name);
        let mut out = Vec::new();
        for _ in 0..1000 {
            let resp = self.send(Method::GET, &url, HeaderMap::new(), || None).await?;
            if !resp.status().is_success() {
                return Err(status_error(resp).await);
            }
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| l.trim().trim_start_matches('<').trim_end_matches('>').to_string());
            let base = resp.url().clone();
            let body = read_limited(resp, &url, MAX_MANIFEST, "tag list").await?;
            let list: List = serde_json::from_slice(&body).map_err(|e| RegistryError::Transport {
                method: "GET".into(),
                url: url.clone(),
                message: format!("bad tag list: {e}"),
            })?;
            out.extend(list.tags.unwrap_or_default());
            match next.and_then(|n| base.join(&n).ok()) {
                Some(n) => url = n.to_string(),
                None => break,
            }
        }
        Ok(out)
    }

    /// Whether the repository has blob `digest` (`HEAD`).
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.endpoint.blob_url(&self.name, digest);
        let resp = self.send(Method::HEAD, &url, HeaderMap::new(), || None).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(resp).await),
        }
    }

    /// Asks for a cross-repository mount of `digest` from repository `from` (same registry); true
    /// when the registry mounted it (`201`). Otherwise the upload it may have opened is dropped.
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, RegistryError> {
        let url = self.endpoint.upload_url(&self.name, Some((digest, from)));
        let resp = self.send(Method::POST, &url, HeaderMap::new(), || None).await?;
        Ok(resp.status() == StatusCode::CREATED)
    }

    /// Uploads a blob in one `PUT` (`POST` to open the upload, `PUT ...?digest=` with the bytes).
    pub async fn upload_blob(
        &self,
        digest: &Digest,
        size: u64,
        body: impl Fn() -> reqwest::Body,
    ) -> Result<(), RegistryError> {
        let url = self.endpoint.upload_url(&self.name, None);
        let resp = self.send(Method::POST, &url, HeaderMap::new(), || None).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(resp).await);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::NoLocation {
                digest: digest.clone(),
            })?;
        let base = resp.url().clone();
        let mut put = base.join(location).map_err(|_| RegistryError::NoLocation {
            digest: digest.clone(),
        })?;
        put.query_pairs_mut().append_pair("digest", &digest.to_string());
        let put = put.to_string();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/octet-stream".parse().expect("static"));
        headers.insert(reqwest::header::CONTENT_LENGTH, size.into());
        let resp = self
            .send(Method::PUT, &put, headers, || Some(Body::Stream(body())))
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        Ok(())
    }

    /// Puts a manifest under `object` (a tag or its digest); returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        object: &str,
        media_type: &str,
        data: Bytes,
    ) -> Result<(), RegistryError> {
        let url = self.endpoint.manifest_url(&self.name, object);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            media_type
                .parse()
                .map_err(|_| RegistryError::Auth(format!("bad media type {media_type:?}")))?,
        );
        let resp = self
            .send(Method::PUT, &url, headers, || Some(Body::Bytes(data.clone())))
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        Ok(())
    }
}

/// A request body that can be made again for the retry after a challenge.
pub enum Body {
    Bytes(Bytes),
    Stream(reqwest::Body),
}

impl Body {
    fn apply(self, rb: RequestBuilder) -> RequestBuilder {
        match self {
            Body::Bytes(b) => rb.body(b),
            Body::Stream(b) => rb.body(b),
        }
    }
}

async fn read_limited(resp: Response, url: &str, limit: usize, what: &str) -> Result<Bytes, RegistryError> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(RegistryError::ManifestTooLarge {
            what: what.to_string(),
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport("GET", url, &e))?;
        if out.len() + chunk.len() > limit {
            return Err(RegistryError::ManifestTooLarge {
                what: what.to_string(),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}
