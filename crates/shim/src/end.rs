//! The end (PROTOCOL.md, "The end"): after the output is drained, the container is deleted, the
//! rootfs unmounted, EXIT recorded in the exit file, every WAIT answered and every client closed.

use std::time::Instant;

use crate::args::Mode;
use crate::conn::Role;
use crate::log::Stream;
use crate::monitor::Shim;
use crate::{diag, setup, time};

impl Shim {
    /// Steps 1-4 of the end, once the output is drained (or the drain's time is up).
    pub fn finish(&mut self) {
        // 1. the rest of the output: unfinished log lines are written, the descriptors closed.
        let now = time::now();
        if let Some(log) = &mut self.log {
            for s in [Stream::Stdout, Stream::Stderr] {
                if let Err(e) = log.finish(s, &now) {
                    diag(&crate::error_chain(&e));
                }
            }
        }
        self.io.close();
        // 2. the container's runtime state, then its rootfs.
        if let Mode::Container { unmount, .. } = &self.args.mode {
            if let Err(e) = self.rt.run(&self.rt.verb(&["delete", "--force"], &[])) {
                diag(&format!("runtime delete: {e}"));
            }
            if let Some(p) = unmount {
                if let Err(e) = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH) {
                    diag(&format!("unmount {}: {e}", p.display()));
                }
            }
        }
        // 3. the exit file, atomically.
        let line = self.exit.as_ref().map(|x| x.to_json()).unwrap_or_default();
        let path = self.args.exit_file();
        if let Err(e) = setup::write_atomically(&path, format!("{line}\n").as_bytes()) {
            diag(&format!("write {}: {e}", path.display()));
        }
        // 4. every WAIT answered; attached clients closed once they have their last output.
        for c in &mut self.conns {
            match c.role {
                Role::Waiting => {
                    c.answer(&line);
                    c.role = Role::Closing;
                }
                Role::Attached(_) => c.role = Role::Closing,
                Role::Request | Role::Closing => {}
            }
            c.flush();
        }
        self.linger_until = Some(Instant::now() + crate::monitor::LINGER);
    }

    /// The socket and the pid file go; the process exits.
    pub fn cleanup(&mut self) {
        let _ = std::fs::remove_file(self.args.socket());
        let _ = std::fs::remove_file(self.args.file("shim", "pid"));
        diag("exiting");
    }
}
