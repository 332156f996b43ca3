//! A small work pool: each item runs on one of `jobs` threads, each thread with its own
//! `xshell::Shell` (a Shell is not `Sync`). Results come back in the items' order.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Mutex,
};

use anyhow::Result;
use xshell::Shell;

pub fn map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&Shell, &T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let shell = match Shell::new() {
                    Ok(shell) => shell,
                    Err(error) => {
                        record_everything_left(&next, items.len(), &results, &error.to_string());
                        return;
                    }
                };
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(index) else { break };
                    let result = work(&shell, item);
                    results.lock().unwrap_or_else(|poisoned| poisoned.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(anyhow::anyhow!("a worker thread stopped before this item"))))
        .collect()
}

fn record_everything_left<R>(next: &AtomicUsize, total: usize, results: &Mutex<Vec<Option<Result<R>>>>, error: &str) {
    loop {
        let index = next.fetch_add(1, Ordering::SeqCst);
        if index >= total {
            break;
        }
        results.lock().unwrap_or_else(|poisoned| poisoned.into_inner())[index] =
            Some(Err(anyhow::anyhow!("cannot start a shell: {error}")));
    }
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from).max(2)
}

/// Work started now on a thread of its own, whose result is taken later, once.
pub struct Background<T> {
    handle: std::sync::Mutex<Option<std::thread::JoinHandle<Result<T>>>>,
}

impl<T: Send + 'static> Background<T> {
    pub fn start(work: impl FnOnce() -> Result<T> + Send + 'static) -> Background<T> {
        Background { handle: Mutex::new(Some(std::thread::spawn(work))) }
    }

    /// Waits for the result; a second call is an error.
    pub fn take(&self) -> Result<T> {
        let handle = self.handle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match handle.map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(anyhow::anyhow!("a background thread panicked")),
            None => Err(anyhow::anyhow!("a background result was taken twice")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_and_every_error() {
        let items: Vec<u32> = (0..20).collect();
        let results =
            super::map(&items, 3, |_, item| if item % 7 == 0 { anyhow::bail!("bad {item}") } else { Ok(item * 2) });
        let rendered: Vec<String> = results
            .iter()
            .map(|result| result.as_ref().map_or_else(|error| error.to_string(), |value| value.to_string()))
            .collect();
        assert_eq!(rendered[0], "bad 0");
        assert_eq!(rendered[1], "2");
        assert_eq!(rendered[14], "bad 14");
        assert_eq!(rendered[19], "38");
    }
}
