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
use crate::model::{redact::redact_text, target::Target};

/// The parent: imports what a resolution uses (each name may be missing in some pip version), then
/// forks a child per request line. Every child writes `ID CODE` to the protocol pipe, in one
/// `write` (atomic below the pipe's buffer size).
const SERVER: &str = r#"
import importlib, traceback
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
def child(request):
    code = 1
    try:
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
        os.write(protocol, ("%d %d\n" % (request["id"], code or 0)).encode())
        os._exit(0)
def reap(block):
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
for line in sys.stdin:
    request = json.loads(line)
    if os.fork() == 0:
        child(request)
    reap(False)
reap(True)
"#;

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
        let mut child = Command::new(&python.path)
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
        let request = serde_json::json!({
            "id": id,
            "args": args,
            "markers": serde_json::from_str::<serde_json::Value>(&markers)?,
            "env": env,
            "cwd": cwd,
            "output": output,
        });
        crate::ui::verbose(&format!("+ (pip worker) pip {}", redact_text(&args.join(" "))));
        {
            let mut stdin = lock(&self.stdin);
            let pipe = stdin.as_mut().ok_or_else(|| anyhow!("the pip worker is stopped"))?;
            writeln!(pipe, "{request}").context("cannot send a resolution to the pip worker")?;
            pipe.flush()?;
        }
        let code = self.wait_for(id)?;
        let text = fs_err::read_to_string(&output).unwrap_or_default();
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
                return Err(anyhow!("the pip worker process stopped before it answered"));
            }
            finished = changed.wait(finished).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
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
