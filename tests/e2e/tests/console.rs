//! A container with a terminal: the pty master reaches the console socket (SCM_RIGHTS), and the
//! container's process sees a terminal on its stdio.

use std::time::Duration;

use berth_e2e::console::{read_until, ConsoleSocket};
use berth_e2e::{env, Container};
use serde_json::json;

#[test]
fn pty_through_the_console_socket() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["tty"]);
    c.config["process"]["terminal"] = json!(true);
    c.write_config();
    let sock = ConsoleSocket::new(&c.dir);
    c.rt(&[
        "create",
        "--bundle",
        c.bundle.to_str().unwrap(),
        "--console-socket",
        sock.path.to_str().unwrap(),
        &c.id,
    ])
    .ok();
    let master = sock
        .master(Duration::from_secs(10))
        .expect("no pty master received");
    c.rt(&["start", &c.id]).ok();
    let text = read_until(master, "stderr_tty", Duration::from_secs(10));
    assert!(text.contains("stdin_tty=true"), "{text:?}");
    assert!(text.contains("stdout_tty=true"), "{text:?}");
}

#[test]
fn terminal_without_console_socket_is_refused_for_create() {
    let Some(e) = env() else { return };
    let mut c = Container::new(&e, &["tty"]);
    c.config["process"]["terminal"] = json!(true);
    c.write_config();
    let o = c.create();
    assert_eq!(o.code, 1);
    assert!(!c.state_left());
}
