//! Tests that fork, change identity or chroot must not run in the test
//! harness's own process, which has threads (a fork copies only one, and a
//! process's ids belong to all of them): they run alone, in a fresh copy of
//! the test binary that runs just that test.

/// Runs the test `name` (its full path) in a child copy of the test binary
/// and checks that it passed there. Returns true in that child, where the
/// test's body then runs; false in the harness, where it should return.
pub fn in_child(name: &str) -> bool {
    const CHILD: &str = "CLASSICD_TEST_ALONE";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "{text}");
    false
}
