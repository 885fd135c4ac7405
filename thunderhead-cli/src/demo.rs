//! `thunderhead demo`: the main job (being written).

use std::path::PathBuf;

use crate::Failure;

pub fn run(_dir: Option<PathBuf>, _db: Option<PathBuf>) -> Result<(), Failure> {
    Err(Failure::Input("the demo is not written yet".into()))
}
