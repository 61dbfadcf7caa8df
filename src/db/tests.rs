use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-data")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn count(db: &Db, table: &str) -> i64 {
    db.read(|c| c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)))
        .unwrap()
}

#[test]
fn a_new_database_is_private_in_wal_mode_with_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let (mode, sync, version, vacuum): (String, i64, i64, i64) = db
        .read(|c| {
            Ok((
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                c.query_row("PRAGMA user_version", [], |r| r.get(0))?,
                c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?,
            ))
        })
        .unwrap();
    // FULL (2), and pages freed on `compact` (INCREMENTAL, 2).
    assert_eq!(
        (mode.as_str(), sync, version, vacuum),
        ("wal", 2, schema::VERSION, 2)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(db.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(db);
    // Opening again migrates nothing and loses nothing.
    let db = Db::open(dir.path()).unwrap();
    db.write(|tx| tx.execute("INSERT INTO revocations (entry) VALUES ('{}')", []))
        .unwrap();
    drop(db);
    assert_eq!(count(&Db::open(dir.path()).unwrap(), "revocations"), 1);
}

#[test]
fn a_schema_newer_than_this_certgate_is_refused_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.read(|c| c.execute_batch(&format!("PRAGMA user_version = {}", schema::VERSION + 1)))
        .unwrap();
    drop(db);
    let e = Db::open(dir.path()).unwrap_err();
    assert_eq!(e.path, dir.path().join(FILE));
    assert!(e.problem.contains("newer than this certgate"), "{e}");
    assert!(e.problem.contains("restore a backup"), "{e}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE), vec![b'x'; 4096]).unwrap();
    let e = Db::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains(FILE), "{e}");
    assert!(e.problem.contains("restore it from a backup"), "{e}");
}

#[test]
fn a_missing_data_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = Db::open(&dir.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains("no such data directory"), "{e}");
}

#[test]
fn the_files_of_an_earlier_certgate_are_imported_once_and_kept_renamed() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    let db = Db::open(dir.path()).unwrap();
    let imported = db.imported().clone();
    assert_eq!(
        (
            imported.revocations,
            imported.issued,
            imported.revoked,
            imported.enrollments
        ),
        (9, 3, 1, 2),
        "{imported}"
    );
    assert_eq!(count(&db, "revocations"), 9);
    assert_eq!(count(&db, "ca_issued"), 3);
    assert_eq!(count(&db, "ca_revoked"), 1);
    assert_eq!(count(&db, "enrollments"), 2);
    for name in [
        "revocations.jsonl",
        "ca/issued.jsonl",
        "ca/revoked.jsonl",
        "enroll",
    ] {
        assert!(!dir.path().join(name).exists(), "{name} still there");
        assert!(
            dir.path().join(format!("{name}.imported")).exists(),
            "{name} not kept"
        );
    }
    // The token id's entry keeps its expiry, for pruning.
    let expires: Option<i64> = db
        .read(|c| {
            c.query_row(
                "SELECT expires FROM revocations WHERE entry LIKE '%AAAAAAAAAAAAAAAAAAAAAA%'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(expires, Some(1_799_133_589));
    drop(db);
    // A second open imports nothing again.
    let db = Db::open(dir.path()).unwrap();
    assert!(db.imported().is_empty());
    assert_eq!(count(&db, "revocations"), 9);
}

#[test]
fn a_crash_between_rename_and_commit_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    // As left by a process that renamed the journal and died before its commit.
    std::fs::rename(
        dir.path().join("revocations.jsonl"),
        dir.path().join("revocations.jsonl.importing"),
    )
    .unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(count(&db, "revocations"), 9);
    drop(db);
    // An older certgate still running wrote the journal again after the import: the new lines
    // are imported at the next open, the old ones not twice.
    let again = std::fs::read_to_string(dir.path().join("revocations.jsonl.imported")).unwrap()
        + "{\"kind\":\"user\",\"id\":\"late\",\"at\":1,\"at_ms\":1000}\n";
    std::fs::write(dir.path().join("revocations.jsonl"), again).unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.imported().revocations, 1);
    assert_eq!(count(&db, "revocations"), 10);
    assert!(dir.path().join("revocations.jsonl.imported.2").exists());
}

#[test]
fn a_cut_off_last_line_is_left_out_and_a_malformed_line_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("revocations.jsonl"),
        "{\"kind\":\"user\",\"id\":\"a\",\"at\":1}\n{\"kind\":\"us",
    )
    .unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(count(&db, "revocations"), 1);
    drop(db);
    std::fs::write(
        dir.path().join("revocations.jsonl"),
        "{\"kind\":\"user\",\"id\":\"b\",\"at\":1}\nnot json\n",
    )
    .unwrap();
    let e = Db::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("revocations.jsonl.importing"), "{e}");
    assert!(e.problem.contains("line 2"), "{e}");
    // Nothing of the bad file was imported; it waits, under its `.importing` name, for a fix.
    std::fs::write(
        dir.path().join("revocations.jsonl.importing"),
        "{\"kind\":\"user\",\"id\":\"b\",\"at\":1}\n",
    )
    .unwrap();
    assert_eq!(count(&Db::open(dir.path()).unwrap(), "revocations"), 2);
}

#[test]
fn a_backup_is_a_database_with_everything_committed_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for i in 0..100 {
        db.write(|tx| {
            tx.execute(
                "INSERT INTO revocations (entry) VALUES (?1)",
                [format!("{{\"n\":{i}}}")],
            )
        })
        .unwrap();
    }
    let copy = dir.path().join("backup.db");
    db.backup(&copy).unwrap();
    let e = db.backup(&copy).unwrap_err();
    assert!(e.problem.contains("exists already"), "{e}");
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join(FILE)).unwrap();
    assert_eq!(
        count(&Db::open(restored.path()).unwrap(), "revocations"),
        100
    );
}

#[test]
fn compact_gives_the_pages_of_deleted_rows_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.write(|tx| {
        let mut insert = tx.prepare("INSERT INTO revocations (entry) VALUES (?1)")?;
        for i in 0..20_000 {
            insert.execute([format!("{{\"kind\":\"jti\",\"id\":\"{i:040}\"}}")])?;
        }
        Ok(())
    })
    .unwrap();
    db.compact().unwrap();
    let size = || std::fs::metadata(db.path()).unwrap().len();
    let full = size();
    assert!(full > 1 << 20, "{full}");
    db.write(|tx| tx.execute("DELETE FROM revocations", []))
        .unwrap();
    db.compact().unwrap();
    assert!(size() < full / 10, "{} of {full} bytes", size());
}

/// The POSIX locks this process holds on `file`, as Linux lists them.
#[cfg(target_os = "linux")]
fn posix_locks_on(file: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(file).unwrap().ino();
    let me = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"POSIX")
                && f.get(4) == Some(&me.as_str())
                && f.get(5)
                    .and_then(|id| id.rsplit(':').next())
                    .is_some_and(|i| i == inode.to_string())
        })
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn a_second_open_in_the_same_process_keeps_the_locks_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = Db::open(dir.path()).unwrap();
    let file = dir.path().join(FILE);
    let held = posix_locks_on(&file);
    assert!(held > 0, "an open connection holds a lock on its file");
    let second = Db::open(dir.path()).unwrap();
    drop(second);
    // Closing a descriptor of the file drops every lock of the process on it: another
    // process would then think it is alone and delete the write-ahead log.
    assert_eq!(posix_locks_on(&file), held);
    drop(first);
}

#[test]
fn a_relaxed_write_commits_on_its_own_connection_and_the_main_one_stays_durable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.write_relaxed(|tx| tx.execute("INSERT INTO revocations (entry) VALUES ('{}')", []))
        .unwrap();
    let sync: i64 = db
        .read(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(sync, 2, "the main connection never leaves FULL");
    assert!(db
        .write_relaxed(|tx| tx.execute("INSERT INTO nowhere VALUES (1)", []))
        .is_err());
    let sync: i64 = db
        .read(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(sync, 2, "nor after a failed relaxed write");
    drop(db);
    assert_eq!(count(&Db::open(dir.path()).unwrap(), "revocations"), 1);
}
