//! A small filesystem of a test's own, to fill up: a tmpfs the test mounts (this needs
//! root, as on the project's machines) and unmounts when done.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted on drop.
pub struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    /// Mounts a tmpfs of `mib` MiB on a new temporary directory. A test that needs one
    /// must not pass without it: if mounting fails, this panics saying why.
    pub fn mount(mib: u64) -> TinyFs {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("the mount command runs");
        assert!(
            output.status.success(),
            "mounting a {mib} MiB tmpfs on {} failed ({}): this test fills a small \
             filesystem of its own and needs root (CAP_SYS_ADMIN), as on the project's \
             machines",
            dir.path().display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        TinyFs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file of `mib` MiB named `name`, taking that much of the space; removing
    /// it frees the space again.
    pub fn ballast(&self, name: &str, mib: usize) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, vec![1u8; mib << 20]).expect("the ballast fits");
        path
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        // Lazily: a server killed a moment ago may still hold files open.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
