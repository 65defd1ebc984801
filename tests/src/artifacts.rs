//! Test components built from source by this crate's build script.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
