//! Progress bars for the library's [`shears_verify::Progress`] hooks (the pruner's and the
//! evaluator's), drawn on stderr only.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress bars on stderr, for tasks that take over a second, only when stderr is a terminal.
pub struct CliProgress {
    enabled: bool,
    bar: RefCell<Option<(ProgressBar, Instant, bool)>>,
}

impl CliProgress {
    pub fn new() -> Self {
        CliProgress {
            enabled: std::io::stderr().is_terminal() && !super::common::quiet(),
            bar: RefCell::new(None),
        }
    }
}

impl Default for CliProgress {
    fn default() -> Self {
        CliProgress::new()
    }
}

impl shears_verify::Progress for CliProgress {
    fn begin(&self, task: &str, total: u64) {
        if !self.enabled {
            return;
        }
        let bar = if total > 0 {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        };
        let template = if total > 0 {
            "{msg} [{bar:30}] {pos}/{len} {elapsed}"
        } else {
            "{msg} {spinner} {pos} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(task.to_string());
        *self.bar.borrow_mut() = Some((bar, Instant::now(), false));
    }

    fn advance(&self, n: u64) {
        if let Some((bar, start, shown)) = self.bar.borrow_mut().as_mut() {
            bar.inc(n);
            if !*shown && start.elapsed() > Duration::from_secs(1) {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                *shown = true;
            }
        }
    }

    fn end(&self) {
        if let Some((bar, _, _)) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}
