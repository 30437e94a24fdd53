//! Builds a one-layer image from a directory and writes it as an OCI image layout:
//! `oci_layout SRC_DIR LAYOUT_DIR REF [CMD...]`, e.g. for pushing with `skopeo copy oci:LAYOUT:REF ...`.
//! The image's creation time is `BERTH_IMAGE_CREATED` (RFC 3339), else the epoch (reproducible).

use std::path::Path;
use std::process::ExitCode;

use berth_image::builder::{layer_from_dir, store_image, write_layout};
use berth_image::manifest::RunConfig;
use berth_image::{Platform, Store};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: oci_layout SRC_DIR LAYOUT_DIR REF [CMD...]");
        return ExitCode::from(2);
    }
    let (src, dest, name) = (Path::new(&args[0]), Path::new(&args[1]), &args[2]);
    let run = || -> Result<String, Box<dyn std::error::Error>> {
        let store = Store::open(&dest.join(".berth-content"))?;
        let layer = layer_from_dir(src)?;
        let cmd = (args.len() > 3).then(|| args[3..].to_vec());
        let (digest, _) = store_image(
            &store,
            &[layer],
            RunConfig {
                cmd,
                ..Default::default()
            },
            &Platform::host(),
            &std::env::var("BERTH_IMAGE_CREATED").unwrap_or_else(|_| "1970-01-01T00:00:00Z".into()),
        )?;
        write_layout(&store, &digest, name, dest)?;
        std::fs::remove_dir_all(dest.join(".berth-content"))?;
        Ok(digest.to_string())
    };
    match run() {
        Ok(d) => {
            println!("{d}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oci_layout: {e}");
            ExitCode::FAILURE
        }
    }
}
