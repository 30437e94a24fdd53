//! berth: the command-line client of berthd.

fn main() {
    eprintln!("berth: no commands yet");
    std::process::exit(1);
}
