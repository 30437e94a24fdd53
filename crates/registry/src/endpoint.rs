//! Registry endpoints: the base URL for a reference's registry (HTTPS, or plain HTTP only for loopback
//! addresses and registries the user names as insecure) and the API paths.

use berth_image::{Digest, Reference};

/// Where a registry is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub plain_http: bool,
}

/// Whether `host` (with an optional port) is a loopback address or `localhost`.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map(|(h, p)| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            })
            .unwrap_or(host)
    };
    if name == "localhost" {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

impl Endpoint {
    /// The endpoint for `reference`; `insecure` lists the registries (host or host:port) allowed over
    /// plain HTTP besides loopback ones.
    pub fn for_reference(reference: &Reference, insecure: &[String]) -> Endpoint {
        let host = reference.registry_host().to_string();
        let plain_http = is_loopback(&host) || insecure.iter().any(|i| i == &host || i == reference.domain());
        Endpoint { host, plain_http }
    }

    pub fn base(&self) -> String {
        format!(
            "{}://{}",
            if self.plain_http { "http" } else { "https" },
            self.host
        )
    }

    /// `/v2/` (the ping).
    pub fn ping_url(&self) -> String {
        format!("{}/v2/", self.base())
    }

    pub fn manifest_url(&self, repo: &str, object: &str) -> String {
        format!("{}/v2/{repo}/manifests/{object}", self.base())
    }

    pub fn blob_url(&self, repo: &str, digest: &Digest) -> String {
        format!("{}/v2/{repo}/blobs/{digest}", self.base())
    }

    /// Starts an upload; with `mount_from`, asks for a cross-repository mount of `digest` first.
    pub fn upload_url(&self, repo: &str, mount: Option<(&Digest, &str)>) -> String {
        match mount {
            Some((d, from)) => format!("{}/v2/{repo}/blobs/uploads/?mount={d}&from={from}", self.base()),
            None => format!("{}/v2/{repo}/blobs/uploads/", self.base()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_and_insecure_registries_use_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(is_loopback("127.1.2.3"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("registry.example.com"));
        let e = Endpoint::for_reference(&r("127.0.0.1:5000/hello-world"), &[]);
        assert_eq!(e.ping_url(), "http://127.0.0.1:5000/v2/");
        let e = Endpoint::for_reference(&r("alpine"), &[]);
        assert_eq!(
            e.manifest_url("library/alpine", "latest"),
            "https://registry-1.docker.io/v2/library/alpine/manifests/latest"
        );
        let e = Endpoint::for_reference(&r("reg.internal:5000/app"), &["reg.internal:5000".to_string()]);
        assert!(e.plain_http);
        let d = Digest::of(b"x");
        assert_eq!(
            e.blob_url("app", &d),
            format!("http://reg.internal:5000/v2/app/blobs/{d}")
        );
        assert_eq!(
            e.upload_url("app", Some((&d, "other"))),
            format!("http://reg.internal:5000/v2/app/blobs/uploads/?mount={d}&from=other")
        );
    }
}
