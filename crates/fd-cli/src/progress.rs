//! Progress bars for long library work, drawn with indicatif behind fd-data's `Progress` trait.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws one bar at a time on standard error; hidden when standard error is not a terminal.
#[derive(Debug, Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl fd_data::Progress for Bars {
    fn start(&self, what: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = if what == "download" {
            "{msg:30} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
        } else {
            "{msg:30} [{bar:40}] {pos}/{len} ({per_sec}, {eta})"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("the template is valid").progress_chars("=> "));
        bar.set_message(what.to_string());
        *self.bar.lock().expect("no thread panics while holding the bar") = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &*self.bar.lock().expect("no thread panics while holding the bar") {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("no thread panics while holding the bar").take() {
            bar.finish_and_clear();
        }
    }
}
