//! berth-shim: one small monitor per container. The protocol with berthd is in `PROTOCOL.md`.

fn main() {
    eprintln!("berth-shim: not built yet");
    std::process::exit(1);
}
