//! Warm pip processes for resolutions. A `pip install --dry-run` spends about 0.6 s of CPU
//! importing pip before it asks the index anything; a create of 4 targets and 3 jobs each ran 12
//! of them. One Python imports pip once, then forks a child per resolution: each child is a
//! fresh pip (its own options, session, environment variables and target markers) that skips the
//! imports. The children run concurrently; each writes its output to a file and its exit code to
//! the parent's pipe.
//!
//! Where `fork` is missing (not a POSIX Python) or `WHEELGAP_PIP_WORKERS=0` is set, resolutions
//! start a process each, as before.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex,
    },
    thread::JoinHandle,
};

use anyhow::{anyhow, Context, Result};

use super::pip::{classify, dry_run_args, DryRun, IndexOptions, Inputs, Python, TARGET_SHIM};
use crate::model::{redact::redact_text, target::Target, untrusted::with_lines_kept};

/// The parent: imports what a resolution uses (each name may be missing in some pip version), then
/// forks a child per request line. Every child writes `ID CODE` to the protocol pipe, in one
/// `write` (atomic below the pipe's buffer size); for a child that dies before it can (a signal),
/// the parent writes `ID -SIGNAL` when it reaps it, so no resolution waits forever.
const SERVER: &str = r#"
import importlib, signal, traceback
for name in ("pip._internal.cli.main", "pip._internal.commands.install", "pip._internal.resolution.resolvelib.resolver",
             "pip._internal.resolution.resolvelib.factory", "pip._internal.network.session",
             "pip._internal.index.package_finder", "pip._internal.operations.prepare",
             "pip._internal.models.installation_report", "pip._internal.network.download",
             "pip._vendor.rich.console", "pip._vendor.requests", "pip._vendor.cachecontrol"):
    try:
        importlib.import_module(name)
    except Exception:
        pass
from pip._internal.cli.main import main
protocol = os.dup(1)
devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(devnull, 1)
running = {}
def answer(request_id, code):
    os.write(protocol, ("%d %d\n" % (request_id, code)).encode())
def ended(pid, status):
    request_id = running.pop(pid, None)
    # A child answers, then exits 0; any other end (a signal, the OOM killer) is answered here.
    if request_id is not None and status != 0:
        answer(request_id, -os.WTERMSIG(status) if os.WIFSIGNALED(status) else 1000 + os.WEXITSTATUS(status))
def reap(*_):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ended(pid, status)
def child(request):
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.dup2(devnull, 0)
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        use_target(request["markers"])
        sys.argv = ["pip"] + request["args"]
        code = main(request["args"])
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        answer(request["id"], code or 0)
        os._exit(0)
signal.signal(signal.SIGCHLD, reap)
for line in sys.stdin.buffer:
    request = json.loads(line)
    # Blocked around the fork, so that the child is known before its end can be reaped.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    pid = os.fork()
    if pid == 0:
        child(request)
    running[pid] = request["id"]
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
reap()
while running:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    ended(pid, status)
"#;

/// The parent stopped (it could not import pip, or was killed) before it answered: the caller
/// may resolve with a pip process instead.
#[derive(Debug, thiserror::Error)]
#[error("the warm pip process stopped before it answered{}", if said.is_empty() { String::new() } else { format!(":\n{said}") })]
pub struct WorkerStopped {
    pub said: String,
}

/// Exit codes reported by the children, by request id.
#[derive(Default)]
struct Finished {
    codes: HashMap<u64, i32>,
    /// The parent's pipe closed: no more answers will come.
    closed: bool,
}

/// A Python with pip imported, forking a pip per resolution.
pub struct PipWorkers {
    stdin: Mutex<Option<ChildStdin>>,
    /// The parent's own stderr (an import that fails, a traceback), shown if it stops.
    stderr: tempfile::NamedTempFile,
    finished: Arc<(Mutex<Finished>, Condvar)>,
    child: Mutex<Child>,
    reader: Option<JoinHandle<()>>,
    next_id: AtomicU64,
}

impl PipWorkers {
    /// Starts the parent; `None` where it cannot work here (no `fork`) or is turned off.
    pub fn start(python: &Python) -> Result<Option<PipWorkers>> {
        if std::env::var_os("WHEELGAP_PIP_WORKERS").is_some_and(|value| value == "0") || !cfg!(unix) {
            return Ok(None);
        }
        let script = format!("{TARGET_SHIM}{SERVER}");
        let stderr = tempfile::Builder::new().prefix("pip-worker-").suffix(".log").tempfile()?;
        let mut child = Command::new(&python.path)
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.reopen()?))
            .spawn()
            .with_context(|| format!("cannot start {}", python.path.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(anyhow!("no pipes to the pip worker"));
        };
        let finished = Arc::new((Mutex::new(Finished::default()), Condvar::new()));
        let reader = {
            let finished = Arc::clone(&finished);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut words = line.split_whitespace().map(str::parse::<i64>);
                    if let (Some(Ok(id)), Some(Ok(code))) = (words.next(), words.next()) {
                        let (state, changed) = &*finished;
                        lock(state).codes.insert(id as u64, code as i32);
                        changed.notify_all();
                    }
                }
                let (state, changed) = &*finished;
                lock(state).closed = true;
                changed.notify_all();
            })
        };
        crate::ui::verbose(&format!("+ {} -c <pip worker>", python.path.display()));
        Ok(Some(PipWorkers {
            stdin: Mutex::new(Some(stdin)),
            stderr,
            finished,
            child: Mutex::new(child),
            reader: Some(reader),
            next_id: AtomicU64::new(1),
        }))
    }

    /// [`Python::resolve`] in a forked pip: the same arguments, markers and environment.
    pub fn resolve(
        &self,
        target: &Target,
        inputs: &Inputs<'_>,
        index: &IndexOptions,
        scratch: &Path,
    ) -> Result<String> {
        let DryRun { markers, args, report } = dry_run_args(target, inputs, index, scratch, &[])?;
        let output = scratch.join("pip-output.txt");
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let env: HashMap<&str, String> = index.environment().into_iter().collect();
        let cwd = std::env::current_dir()?;
        let utf8 = |path: &Path| -> Result<String> {
            path.to_str().map(str::to_owned).with_context(|| format!("{} is not UTF-8", path.display()))
        };
        let request = serde_json::to_string(&serde_json::json!({
            "id": id,
            "args": args,
            "markers": serde_json::from_str::<serde_json::Value>(&markers)?,
            "env": env,
            "cwd": utf8(&cwd)?,
            "output": utf8(&output)?,
        }))?;
        crate::ui::verbose(&format!("+ (pip worker) pip {}", redact_text(&args.join(" "))));
        {
            let mut stdin = lock(&self.stdin);
            let pipe = stdin.as_mut().ok_or_else(|| anyhow!("the pip worker is stopped"))?;
            if writeln!(pipe, "{request}").and_then(|()| pipe.flush()).is_err() {
                return Err(self.stopped().into());
            }
        }
        let code = self.wait_for(id)?;
        let mut text = fs_err::read_to_string(&output).unwrap_or_default();
        if code < 0 {
            text.push_str(&format!("\nthe pip process was killed by signal {}", -code));
        }
        classify(code, &text)?;
        fs_err::read_to_string(&report).context("pip wrote no report")
    }

    fn wait_for(&self, id: u64) -> Result<i32> {
        let (state, changed) = &*self.finished;
        let mut finished = lock(state);
        loop {
            if let Some(code) = finished.codes.remove(&id) {
                return Ok(code);
            }
            if finished.closed {
                return Err(self.stopped().into());
            }
            finished = changed.wait(finished).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl PipWorkers {
    /// What the parent said before it stopped: its last lines, credentials redacted, control
    /// characters escaped.
    fn stopped(&self) -> WorkerStopped {
        let said = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        let last: Vec<&str> = said.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
        WorkerStopped { said: with_lines_kept(&redact_text(&last.join("\n"))) }
    }
}

impl Drop for PipWorkers {
    /// Closing its input tells the parent to wait for its children and exit.
    fn drop(&mut self) {
        lock(&self.stdin).take();
        let _ = lock(&self.child).wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
