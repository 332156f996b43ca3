//! SIGKILL at random moments of create, pack and unpack: afterwards the previous wheelhouse and
//! archive are whole (or the new ones are, never a mix) and the next run succeeds. Run with
//! `XTASK_KILL_TESTS=N` for N rounds of the three commands (`.ci/run` sets it); without it the
//! test returns at once.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::support::{
    project::{stderr, Project, ONE_TARGET},
    run_ok,
};

/// A small generator of kill delays; the seed is printed so that a failure can be replayed with
/// `XTASK_KILL_SEED`.
struct Delays(u64);

impl Delays {
    fn next_millis(&mut self, below: u64) -> u64 {
        // Knuth's MMIX linear congruential generator: plenty for spreading kills over a run.
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// `XTASK_KILL_TESTS` rounds (none: the test returns at once), and delays from `XTASK_KILL_SEED`
/// or the clock, the seed printed so that a failing round can be replayed.
fn rounds_and_delays(what: &str) -> Option<(usize, Delays)> {
    let rounds = std::env::var("XTASK_KILL_TESTS").ok().and_then(|text| text.parse::<usize>().ok())?;
    let seed = std::env::var("XTASK_KILL_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("{what}: {rounds} rounds, XTASK_KILL_SEED={seed}");
    Some((rounds, Delays(seed)))
}

/// Runs `command` in a process group of its own and kills the group after `delay`, unless it
/// finished first. Returns whether it was killed.
fn kill_after(mut command: Command, delay: Duration) -> bool {
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if Instant::now() >= deadline {
            // SAFETY: signalling the process group this function just created.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The wheelhouse verifies against its manifest and the archive against its sidecar.
fn assert_whole(project: &Project, what: &str) {
    let verify = project.command(&["verify-wheelhouse", "--no-install-check", "--accept-foreign"]).output().unwrap();
    assert!(verify.status.success(), "after a kill during {what}: {}", stderr(&verify));
    let archive = project
        .command(&["verify-wheelhouse", "--no-install-check", "--accept-foreign", "--archive", "wheelhouse.tgz"])
        .output()
        .unwrap();
    assert!(archive.status.success(), "after a kill during {what}: {}", stderr(&archive));
}

#[test]
fn random_kills_of_create_pack_and_unpack_leave_whole_wheelhouses_and_archives() {
    let Some((rounds, mut delays)) = rounds_and_delays("kill test") else { return };
    let project = Project::with_wheelhouse("purelib\n", &ONE_TARGET);
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let url = project.index.file_index_url();
    let create = |requirements: &str| {
        project.write("requirements.txt", requirements);
        let mut command = project.create_command(&["--index-url", &url, "--no-build-tools"]);
        command.args(ONE_TARGET);
        command
    };
    // How long each command takes here, so that kills land inside it rather than after it.
    let timed = |mut command: Command| -> u64 {
        let started = Instant::now();
        run_ok(&mut command);
        (started.elapsed().as_millis() as u64).max(5)
    };
    let big = "purelib\nspeedup\nbigpayload\n";
    let create_ms = timed(create(big)).max(timed(create("purelib\n")));
    let pack_ms = timed(project.command(&["pack-wheelhouse"]));
    let unpack_ms = timed(project.command(&["unpack-wheelhouse", "wheelhouse.tgz"]));
    let mut kills = 0;
    for round in 0..rounds {
        // Two sets of requirements in turn, so that every create has work to do.
        let requirements = if round % 2 == 0 { big } else { "purelib\n" };
        kills += usize::from(kill_after(create(requirements), Duration::from_millis(delays.next_millis(create_ms))));
        assert_whole(&project, "create-wheelhouse");
        run_ok(&mut create(requirements));

        kills += usize::from(kill_after(
            project.command(&["pack-wheelhouse"]),
            Duration::from_millis(delays.next_millis(pack_ms)),
        ));
        assert_whole(&project, "pack-wheelhouse");
        run_ok(&mut project.command(&["pack-wheelhouse"]));

        let unpack = project.command(&["unpack-wheelhouse", "wheelhouse.tgz"]);
        kills += usize::from(kill_after(unpack, Duration::from_millis(delays.next_millis(unpack_ms))));
        assert_whole(&project, "unpack-wheelhouse");
        run_ok(&mut project.command(&["unpack-wheelhouse", "wheelhouse.tgz"]));
    }
    eprintln!("kill test: {kills} of {} runs killed", rounds * 3);
    assert!(kills > 0, "no run was killed: the delays are too long for this machine");
}

/// The manifest sha256 of a wheelhouse directory.
fn manifest_sha256(dir: &std::path::Path) -> String {
    xtask::model::digest::sha256_hex(&fs_err::read(dir.join("manifest.json")).unwrap())
}

#[test]
fn random_kills_of_a_delta_apply_leave_the_base_or_the_new_wheelhouse_whole() {
    let Some((rounds, mut delays)) = rounds_and_delays("delta kill test") else { return };
    let project = Project::with_wheelhouse("packaging==24.2\npurelib\nbigpayload\n", &ONE_TARGET);
    run_ok(&mut project.command(&["index"]));
    run_ok(&mut project.command(&["pack-wheelhouse", "--output", "base.tgz"]));
    let base = manifest_sha256(&project.wheelhouse());
    project.write("requirements.txt", "packaging==25.0\npurelib\nbigpayload\nspeedup\n");
    project.create_from_file_index(&ONE_TARGET);
    run_ok(&mut project.command(&["index"]));
    run_ok(&mut project.command(&["pack-wheelhouse", "--since", "base.tgz"]));
    let new = manifest_sha256(&project.wheelhouse());
    let far = project.root().join("far");
    let apply = || project.command(&["unpack-wheelhouse", "wheelhouse.delta.tgz", "--wheelhouse", "far"]);
    // How long an apply takes once the files are in the page cache (the first one reads them):
    // the shorter of two, so that the kills land inside the applies that follow.
    let mut apply_ms = u64::MAX;
    for _ in 0..2 {
        run_ok(&mut project.command(&["unpack-wheelhouse", "base.tgz", "--wheelhouse", "far", "--accept-foreign"]));
        let started = Instant::now();
        run_ok(&mut apply());
        apply_ms = apply_ms.min((started.elapsed().as_millis() as u64).max(5));
    }
    let mut kills = 0;
    for _ in 0..rounds {
        run_ok(&mut project.command(&["unpack-wheelhouse", "base.tgz", "--wheelhouse", "far", "--accept-foreign"]));
        kills += usize::from(kill_after(apply(), Duration::from_millis(delays.next_millis(apply_ms))));
        // Whole, and either the base or the new wheelhouse: never a mix.
        let verify = project
            .command(&["verify-wheelhouse", "--no-install-check", "--accept-foreign", "--wheelhouse", "far"])
            .output()
            .unwrap();
        assert!(verify.status.success(), "after a kill of the apply: {}", stderr(&verify));
        let now = manifest_sha256(&far);
        assert!(now == base || now == new, "after a kill of the apply: manifest {now}");
        // The next run finishes the update (or, when the killed one had, refuses to apply twice).
        let again = apply().output().unwrap();
        assert_eq!(again.status.success(), now == base, "{}", stderr(&again));
        assert_eq!(manifest_sha256(&far), new);
    }
    eprintln!("delta kill test: {kills} of {rounds} applies killed");
    assert!(kills > 0, "no apply was killed: the delays are too long for this machine");
}
