//! Image service tests without a registry: images are built with berth_image::builder.
