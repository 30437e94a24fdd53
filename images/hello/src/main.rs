//! `hello`: the only program of berth's hello-world image. It proves that an image was pulled,
//! unpacked and run in a container: it prints a greeting and what just happened.

use std::io::Write;

const GREETING: &str = "
Hello from Berth!
This greeting comes from a container, so your berth installation works.

What just happened:
 1. The berth client asked the berth daemon to run the image.
 2. The daemon did not have the image, so it pulled it from the registry.
 3. It unpacked the image's layers and made a container from them.
 4. The container ran this program, whose output the daemon streamed back to your terminal.

Next, try something bigger:
 $ berth run -it 127.0.0.1:5000/busybox sh
";

fn main() {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(GREETING.as_bytes());
    let _ = out.flush();
}
