//! berthd: the daemon serving the Docker Engine API.

fn main() {
    eprintln!("berthd: not serving yet");
    std::process::exit(1);
}
