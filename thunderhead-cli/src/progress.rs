//! Progress on long work, shown only when standard error is a terminal (so scripts and
//! pipes see clean output).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A counter of `what` (entries loaded, say), or a hidden one when stderr is not a
/// terminal.
pub fn counter(what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} {msg} ({per_sec}, {elapsed})")
    {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
