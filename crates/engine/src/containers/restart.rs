//! Restart policies with dockerd's semantics: which exits restart a container, how long to wait
//! before the next start (docker's back-off: 100 ms doubling to at most a minute, reset after a run
//! of ten seconds or more), and which containers come back when the daemon starts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::images::Error;

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

/// The back-off's first wait and its ceiling.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    /// dockerd's validation (and the empty name meaning `no`).
    pub fn validate(&self, auto_remove: bool) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Invalid(format!("invalid restart policy: {m}")));
        match self.name.as_str() {
            "" | "no" | "always" | "unless-stopped" => {
                if self.maximum_retry_count != 0 {
                    return bad("maximum retry count can only be used with 'on-failure'");
                }
            }
            "on-failure" => {
                if self.maximum_retry_count < 0 {
                    return bad("maximum retry count cannot be negative");
                }
            }
            other => {
                return bad(&format!(
                    "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                ))
            }
        }
        if auto_remove && !self.is_none() {
            return Err(Error::Invalid(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        Ok(())
    }

    pub fn is_none(&self) -> bool {
        matches!(self.name.as_str(), "" | "no")
    }

    /// The name as inspect shows it (`no` for an empty policy).
    pub fn shown(&self) -> RestartPolicy {
        RestartPolicy {
            name: if self.name.is_empty() {
                "no".into()
            } else {
                self.name.clone()
            },
            maximum_retry_count: self.maximum_retry_count,
        }
    }

    /// Whether berthd starts this container when the daemon itself starts.
    pub fn start_with_daemon(&self, manually_stopped: bool) -> bool {
        match self.name.as_str() {
            "always" => true,
            "unless-stopped" => !manually_stopped,
            _ => false,
        }
    }
}

/// The state a container's restarts are decided from.
#[derive(Debug, Clone, Default)]
pub struct Restarts {
    /// `RestartCount`: restarts made by the policy since the last start asked for by a user.
    pub count: u32,
    /// The current back-off step (zero before the first restart).
    pub delay: Duration,
}

impl Restarts {
    /// After an exit with `exit_code` following a run of `ran`: `Some(delay)` when the policy
    /// restarts the container after `delay`, `None` when it stays down. `manually_stopped` is true
    /// when a user stopped or killed it.
    pub fn after_exit(
        &mut self,
        policy: &RestartPolicy,
        exit_code: i64,
        ran: Duration,
        manually_stopped: bool,
    ) -> Option<Duration> {
        if manually_stopped {
            return None;
        }
        let restart = match policy.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                exit_code != 0
                    && (policy.maximum_retry_count == 0 || i64::from(self.count) < policy.maximum_retry_count)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        if ran >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            FIRST_DELAY
        } else {
            (self.delay * 2).min(MAX_DELAY)
        };
        self.count += 1;
        Some(self.delay)
    }

    /// A start asked for by a user resets the count and the back-off (as `docker start`).
    pub fn reset(&mut self) {
        *self = Restarts::default();
    }
}

/// `--restart` as the CLI and the API's `RestartPolicy` name it: `no`, `always`,
/// `unless-stopped`, `on-failure[:N]`.
pub fn parse(s: &str) -> Result<RestartPolicy, Error> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => {
            let c = c.parse::<i64>().map_err(|_| {
                Error::Invalid(format!(
                    "invalid restart policy format: maximum retry count must be an integer: {c:?}"
                ))
            })?;
            (n, c)
        }
        None => (s, 0),
    };
    let p = RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: count,
    };
    p.validate(false)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(name: &str, n: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: n,
        }
    }

    const SHORT: Duration = Duration::from_millis(50);

    #[test]
    fn no_policy_never_restarts() {
        let mut r = Restarts::default();
        assert_eq!(r.after_exit(&pol("no", 0), 1, SHORT, false), None);
        assert_eq!(r.after_exit(&pol("", 0), 1, SHORT, false), None);
        assert_eq!(r.count, 0);
    }

    #[test]
    fn always_backs_off_doubling_up_to_a_minute() {
        let mut r = Restarts::default();
        let p = pol("always", 0);
        let waits: Vec<u128> = (0..12)
            .map(|_| r.after_exit(&p, 0, SHORT, false).unwrap().as_millis())
            .collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
        );
        assert_eq!(r.count, 12);
    }

    #[test]
    fn a_long_run_resets_the_back_off() {
        let mut r = Restarts::default();
        let p = pol("unless-stopped", 0);
        r.after_exit(&p, 0, SHORT, false);
        r.after_exit(&p, 0, SHORT, false);
        assert_eq!(
            r.after_exit(&p, 0, SHORT, false),
            Some(Duration::from_millis(400))
        );
        assert_eq!(
            r.after_exit(&p, 0, Duration::from_secs(11), false),
            Some(FIRST_DELAY)
        );
        assert_eq!(r.count, 4);
    }

    #[test]
    fn manual_stop_wins() {
        let mut r = Restarts::default();
        assert_eq!(r.after_exit(&pol("always", 0), 137, SHORT, true), None);
        assert_eq!(r.after_exit(&pol("on-failure", 0), 1, SHORT, true), None);
    }

    #[test]
    fn on_failure_counts_and_ignores_success() {
        let mut r = Restarts::default();
        let p = pol("on-failure", 2);
        assert_eq!(r.after_exit(&p, 0, SHORT, false), None);
        assert!(r.after_exit(&p, 1, SHORT, false).is_some());
        assert!(r.after_exit(&p, 1, SHORT, false).is_some());
        assert_eq!(r.after_exit(&p, 1, SHORT, false), None);
        assert_eq!(r.count, 2);
        r.reset();
        assert!(r.after_exit(&p, 3, SHORT, false).is_some());
        let mut unlimited = Restarts::default();
        for _ in 0..20 {
            assert!(unlimited
                .after_exit(&pol("on-failure", 0), 2, SHORT, false)
                .is_some());
        }
    }

    #[test]
    fn daemon_start() {
        assert!(pol("always", 0).start_with_daemon(true));
        assert!(pol("unless-stopped", 0).start_with_daemon(false));
        assert!(!pol("unless-stopped", 0).start_with_daemon(true));
        assert!(!pol("on-failure", 0).start_with_daemon(false));
        assert!(!pol("no", 0).start_with_daemon(false));
    }

    #[test]
    fn parse_and_validate_like_dockerd() {
        assert_eq!(parse("on-failure:3").unwrap(), pol("on-failure", 3));
        assert_eq!(parse("always").unwrap(), pol("always", 0));
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(
            err("sometimes"),
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        );
        assert_eq!(
            err("always:3"),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert_eq!(
            err("on-failure:-1"),
            "invalid restart policy: maximum retry count cannot be negative"
        );
        assert!(err("on-failure:x").contains("must be an integer"));
        assert_eq!(
            pol("always", 0).validate(true).unwrap_err().to_string(),
            "can't create 'AutoRemove' container with restart policy"
        );
        assert!(pol("no", 0).validate(true).is_ok());
        assert_eq!(pol("", 0).shown(), pol("no", 0));
    }
}
