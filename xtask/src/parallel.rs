//! A small work pool: each item runs on one of `jobs` threads, each thread with its own
//! `xshell::Shell` (a Shell is not `Sync`). Results come back in the items' order.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Condvar, Mutex, MutexGuard,
    },
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

/// Work handed from producers to consumers as it appears: `pop` waits for an item, and returns
/// `None` once the queue is closed and empty, or cancelled.
pub struct Queue<T> {
    state: Mutex<QueueState<T>>,
    ready: Condvar,
}

struct QueueState<T> {
    items: VecDeque<T>,
    closed: bool,
    cancelled: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue {
            state: Mutex::new(QueueState { items: VecDeque::new(), closed: false, cancelled: false }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Queue<T> {
    fn state(&self) -> MutexGuard<'_, QueueState<T>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds an item; after `close` or `cancel`, it is dropped.
    pub fn push(&self, item: T) {
        let mut state = self.state();
        if !state.closed && !state.cancelled {
            state.items.push_back(item);
            self.ready.notify_one();
        }
    }

    /// No more items will come: consumers finish what is queued.
    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_all();
    }

    /// Stop: what is queued is dropped, and consumers stop.
    pub fn cancel(&self) {
        let mut state = self.state();
        state.cancelled = true;
        state.items.clear();
        self.ready.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    pub fn pop(&self) -> Option<T> {
        let mut state = self.state();
        loop {
            if state.cancelled {
                return None;
            }
            if let Some(item) = state.items.pop_front() {
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// Closes the queue when dropped, so that consumers stop even when the producer fails or panics.
pub struct CloseOnDrop<'a, T>(pub &'a Queue<T>);

impl<T> Drop for CloseOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.close();
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

    #[test]
    fn a_queue_hands_every_item_to_one_consumer_and_stops_when_closed_or_cancelled() {
        let queue = super::Queue::default();
        let taken = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    while let Some(item) = queue.pop() {
                        taken.lock().unwrap().push(item);
                    }
                });
            }
            let _closer = super::CloseOnDrop(&queue);
            for item in 0..100 {
                queue.push(item);
            }
        });
        let mut taken = taken.into_inner().unwrap();
        taken.sort_unstable();
        assert_eq!(taken, (0..100).collect::<Vec<_>>());
        queue.push(7);
        assert_eq!(queue.pop(), None, "closed: nothing more is taken");

        let cancelled = super::Queue::default();
        cancelled.push(1);
        cancelled.cancel();
        assert!(cancelled.is_cancelled());
        assert_eq!(cancelled.pop(), None);
    }
}
