use super::*;

fn device_entry(serial: &str, now_ms: i64) -> Entry {
    Entry::device(&Serial::parse(serial).unwrap(), now_ms)
}

fn journal() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::in_data_dir(dir.path());
    (dir, j)
}

#[test]
fn revoked_jti_is_remembered_until_it_would_expire() {
    let (dir, j) = journal();
    let r = Revocations::open(j, 50).unwrap();
    r.revoke_jti("a", 100).unwrap();
    assert!(r.is_jti_revoked("a"));
    assert!(!r.is_jti_revoked("b"));
    r.sync(100 + crate::jwt::LEEWAY).unwrap();
    assert!(!r.is_jti_revoked("a"), "expired entries are dropped");
    drop(dir);
}

#[test]
fn user_cutoff_ends_tokens_up_to_its_millisecond_and_new_ones_start_after() {
    let r = Revocations::default();
    assert!(!r.is_user_revoked("alice", 10_000));
    assert_eq!(r.mint_time("alice", None, 100_500), 100_500);
    r.revoke_user("alice", 100_500).unwrap();
    assert!(r.is_user_revoked("alice", 99_000));
    assert!(r.is_user_revoked("alice", 100_500), "same millisecond");
    assert!(!r.is_user_revoked("alice", 100_501));
    assert!(!r.is_user_revoked("bob", 99_000));
    assert_eq!(r.mint_time("alice", None, 100_500), 100_501);
    assert_eq!(
        r.mint_time("alice", None, 100_900),
        100_900,
        "never ahead of the clock"
    );
    r.revoke_user("alice", 50_000).unwrap();
    assert!(
        r.is_user_revoked("alice", 100_500),
        "a clock step back keeps the later cut-off"
    );
}

#[test]
fn a_cutoff_in_seconds_only_covers_its_whole_second_and_a_token_without_ms_its_start() {
    let r = Revocations::default();
    // Written by a certgate that kept seconds only.
    r.revoke(Entry::User {
        id: "alice".into(),
        at: 100,
        at_ms: None,
    })
    .unwrap();
    assert!(r.is_user_revoked("alice", 100_999));
    assert!(!r.is_user_revoked("alice", 101_000));
    // An `at_ms` that disagrees with `at` is not trusted either.
    r.revoke(Entry::User {
        id: "bob".into(),
        at: 100,
        at_ms: Some(5),
    })
    .unwrap();
    assert!(r.is_user_revoked("bob", 100_999));
}

#[test]
fn repeated_cutoffs_move_only_their_own_key() {
    let r = Revocations::default();
    for _ in 0..1000 {
        r.revoke_user("mallory", 100_000).unwrap();
        r.revoke(device_entry("0a", 100_000)).unwrap();
    }
    assert_eq!(
        r.mint_time("alice", None, 100_000),
        100_000,
        "other users untouched"
    );
    // Only the key revoked moves, by a millisecond per cut-off in the same millisecond.
    assert_eq!(r.mint_time("mallory", None, 100_000), 101_000);
    assert_eq!(r.mint_time("bob", Some("0a"), 100_000), 101_000);
    assert_eq!(r.mint_time("bob", Some("0b"), 100_000), 100_000);
}

#[test]
fn another_process_appending_is_seen_on_the_next_sync_and_a_restart_keeps_everything() {
    let (dir, j) = journal();
    let server = Revocations::open(j, 0).unwrap();
    let cli = Journal::in_data_dir(dir.path());
    cli.append(&Entry::Serial {
        id: "0A1B".into(),
        at: 1,
    })
    .unwrap();
    cli.append(&Entry::user("bob", 5_000)).unwrap();
    assert!(!server.is_serial_revoked("0a1b"));
    server.sync(1).unwrap();
    assert!(server.is_serial_revoked("0a1b") && server.is_user_revoked("bob", 5_000));
    server.revoke_jti("t1", 1000).unwrap();
    let restarted = Revocations::open(Journal::in_data_dir(dir.path()), 2).unwrap();
    assert!(restarted.is_jti_revoked("t1"));
    assert!(restarted.is_serial_revoked("0A1B"));
    assert!(restarted.is_user_revoked("bob", 4));
}

#[test]
fn a_half_written_line_waits_and_a_malformed_one_fails_closed() {
    let (dir, j) = journal();
    let path = j.path().to_path_buf();
    let r = Revocations::open(j, 0).unwrap();
    std::fs::write(
        &path,
        "{\"kind\":\"jti\",\"id\":\"x\",\"until\":99}\n{\"kind\":\"jti\"",
    )
    .unwrap();
    r.sync(1).unwrap();
    assert!(r.is_jti_revoked("x"));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b",\"id\":\"y\",\"until\":99}\nnonsense\n").unwrap();
    assert!(r.sync(2).is_err());
    assert!(r.is_jti_revoked("x"), "what was known stays known");
    assert_eq!(r.stale(2, 10), None, "stale only after max_staleness");
    assert!(r.stale(20, 10).unwrap().contains("not a revocation"));
    assert!(Revocations::open(Journal::in_data_dir(dir.path()), 0).is_err());
}

#[test]
fn a_deleted_journal_is_trouble_not_a_clean_slate() {
    let (_dir, j) = journal();
    let path = j.path().to_path_buf();
    let r = Revocations::open(j, 0).unwrap();
    r.revoke_jti("x", 99).unwrap();
    r.sync(1).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(r.sync(2).is_err());
    assert!(r.is_jti_revoked("x"));
}

#[test]
fn a_device_cutoff_ends_that_certificates_tokens_only_and_new_ones_start_after() {
    let r = Revocations::default();
    let entry = Entry::requested(None, None, Some("0A:1B"), None, 100_000, 3600).unwrap();
    assert_eq!(
        entry,
        Entry::Device {
            id: "0a1b".into(),
            at: 100,
            at_ms: Some(100_000)
        }
    );
    r.revoke(entry).unwrap();
    assert!(r.is_device_revoked("0A1B", 100_000));
    assert!(!r.is_device_revoked("0a1b", 100_001));
    assert!(
        !r.is_device_revoked("0c", 50_000),
        "other devices keep theirs"
    );
    assert!(
        !r.is_serial_revoked("0a1b"),
        "the certificate itself stays valid"
    );
    assert!(!r.is_user_revoked("alice", 50_000));
    assert_eq!(r.mint_time("alice", Some("0a1b"), 100_000), 100_001);
    assert_eq!(r.mint_time("alice", Some("0c"), 100_000), 100_000);
}

#[test]
fn why_revoked_reads_every_kind_under_one_lock() {
    let r = Revocations::default();
    let live = |r: &Revocations, serial| r.why_revoked("t1", "alice", serial, 100_000);
    assert_eq!(live(&r, Some("0A1B")), None, "nothing revoked yet");
    r.revoke(device_entry("0a1b", 100_000)).unwrap();
    assert_eq!(live(&r, Some("0A1B")), Some("its device was signed out"));
    assert_eq!(live(&r, None), None, "a token without x5s has no device");
    r.revoke(Entry::Serial {
        id: "0a1b".into(),
        at: 100,
    })
    .unwrap();
    assert_eq!(live(&r, Some("0a1b")), Some("its certificate was revoked"));
    r.revoke_user("alice", 100_000).unwrap();
    assert_eq!(live(&r, None), Some("signed out everywhere"));
    assert_eq!(
        r.why_revoked("t1", "alice", None, 100_001),
        None,
        "signed in after the cut-off"
    );
    r.revoke_jti("t1", 1_000).unwrap();
    assert_eq!(live(&r, None), Some("revoked"));
}

#[test]
fn a_requested_revocation_names_the_field_that_is_wrong() {
    let e = |u, s, d, j| Entry::requested(u, s, d, j, 0, 60).unwrap_err();
    assert!(e(None, Some("xyz"), None, None).starts_with("serial:"));
    assert!(e(None, None, Some("0x"), None).starts_with("device:"));
    assert!(e(Some("a"), None, None, Some("j")).contains("not several"));
    assert!(e(None, None, None, Some("  ")).contains("say what"));
}

#[test]
fn a_second_cutoff_covers_the_sign_in_after_the_first() {
    let r = Revocations::default();
    r.revoke_user("alice", 100_000).unwrap();
    let signed_in_again = r.mint_time("alice", Some("0a"), 100_000);
    assert!(!r.is_user_revoked("alice", signed_in_again));
    r.revoke_user("alice", 100_001).unwrap();
    assert!(r.is_user_revoked("alice", signed_in_again));
    r.revoke(device_entry("0a", 100_002)).unwrap();
    let device_again = r.mint_time("bob", Some("0a"), 100_002);
    assert!(!r.is_device_revoked("0a", device_again));
    r.revoke(device_entry("0a", 100_003)).unwrap();
    assert!(r.is_device_revoked("0a", device_again));
}

#[test]
fn token_ids_in_any_shape_are_kept_and_only_exactly_matched() {
    let r = Revocations::default();
    let ours = crate::jwt::random_id().unwrap();
    r.revoke_jti(&ours, 100).unwrap();
    r.revoke_jti("not-one-of-ours", 100).unwrap();
    assert!(r.is_jti_revoked(&ours));
    assert!(r.is_jti_revoked("not-one-of-ours"));
    assert_eq!(r.jti_count(), 2);
    let mut other = ours.clone();
    other.replace_range(0..1, if ours.starts_with('A') { "B" } else { "A" });
    assert!(!r.is_jti_revoked(&other));
    assert!(!r.is_jti_revoked(&ours[..21]));
    // The same 16 bytes spelled with trailing bits set is another id.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = ALPHABET
        .iter()
        .position(|&c| c == ours.as_bytes()[21])
        .unwrap();
    let mut sloppy = ours[..21].to_string();
    sloppy.push(ALPHABET[last | 1] as char);
    assert!(!r.is_jti_revoked(&sloppy));
}

#[test]
fn a_cutoff_in_the_millisecond_of_the_last_one_covers_the_sign_in_between() {
    let r = Revocations::default();
    r.revoke_user("alice", 100_000).unwrap();
    let again = r.mint_time("alice", None, 100_000);
    assert_eq!(again, 100_001);
    r.revoke_user("alice", 100_000).unwrap();
    assert!(r.is_user_revoked("alice", again));
    r.revoke(device_entry("0a", 100_000)).unwrap();
    let device_again = r.mint_time("bob", Some("0a"), 100_000);
    r.revoke(device_entry("0a", 100_000)).unwrap();
    assert!(r.is_device_revoked("0a", device_again));
}

#[test]
fn a_serial_revoked_in_any_spelling_ends_the_certificate_and_its_tokens() {
    // An external CA's serial with the top bit set: the certificate's DER carries 00 9a ….
    let cert_serial = Serial::from_der(&[0x00, 0x9a, 0x00, 0xab]);
    for spelling in [
        "9A00AB",
        "00:9a:00:ab",
        "0x9a00ab",
        "009A00AB",
        " 9a:00:AB ",
    ] {
        let r = Revocations::default();
        let entry = Entry::requested(None, Some(spelling), None, None, 100_000, 60).unwrap();
        assert_eq!(entry.describe(), ("serial", "9a00ab"), "{spelling}");
        r.revoke(entry).unwrap();
        assert!(r.is_serial_revoked(cert_serial.as_str()), "{spelling}");
        // Tokens minted by an older certgate carry the DER spelling in `x5s`.
        for x5s in ["9a00ab", "009a00ab"] {
            assert_eq!(
                r.why_revoked("t", "bob", Some(x5s), 1),
                Some("its certificate was revoked"),
                "{spelling} / {x5s}"
            );
        }
        let device = Entry::requested(None, None, Some(spelling), None, 100_000, 60).unwrap();
        r.revoke(device).unwrap();
        assert!(r.is_device_revoked("009a00ab", 100_000), "{spelling}");
    }
}

#[test]
fn entries_an_older_certgate_stored_with_the_sign_byte_still_revoke() {
    let (dir, j) = journal();
    std::fs::write(
        dir.path().join("revocations.jsonl"),
        concat!(
            r#"{"kind":"serial","id":"009a00ab","at":5}"#,
            "\n",
            r#"{"kind":"device","id":"00:8F:01","at":5}"#,
            "\n",
            r#"{"kind":"serial","id":"not a serial","at":5}"#,
            "\n"
        ),
    )
    .unwrap();
    let r = Revocations::open(j, 50).unwrap();
    assert!(r.is_serial_revoked("9a00ab"));
    assert!(r.is_serial_revoked("9A:00:AB"));
    assert!(r.is_device_revoked("8f01", 5_000));
    assert!(!r.is_serial_revoked("8f01"));
}

#[test]
fn a_lock_refuses_every_token_of_its_user_until_a_later_unlock() {
    let r = Revocations::default();
    let lock = |at_ms| Entry::Lock {
        id: "alice".into(),
        at_ms,
    };
    let unlock = |at_ms| Entry::Unlock {
        id: "alice".into(),
        at_ms,
    };
    r.revoke(lock(100_000)).unwrap();
    assert!(r.is_locked("alice") && !r.is_locked("bob"));
    // Even a token minted after the lock (on a replica that had not heard of it yet).
    assert_eq!(
        r.why_revoked("j", "alice", None, 100_500),
        Some("its user is locked out")
    );
    assert_eq!(r.why_revoked("j", "bob", None, 100_500), None);
    // Letting the user back in in the very same millisecond still works (made later), and
    // tokens issued until the lock stay ended.
    r.revoke(unlock(100_000)).unwrap();
    assert!(!r.is_locked("alice"));
    assert_eq!(
        r.why_revoked("j", "alice", None, 99_000),
        Some("signed out everywhere")
    );
    assert_eq!(r.why_revoked("j", "alice", None, 100_500), None);
    assert!(r.mint_time("alice", None, 100_000) > 100_000);
}

#[test]
fn the_later_of_a_lock_and_an_unlock_wins_in_any_order_and_a_tie_locks() {
    let lock = |at_ms| Entry::Lock {
        id: "alice".into(),
        at_ms,
    };
    let unlock = |at_ms| Entry::Unlock {
        id: "alice".into(),
        at_ms,
    };
    for (entries, locked) in [
        (vec![lock(1), unlock(2)], false),
        (vec![unlock(2), lock(1)], false),
        (vec![unlock(1), lock(2)], true),
        (vec![lock(2), unlock(1)], true),
        (vec![lock(5), unlock(5)], true),
        (vec![unlock(5), lock(5)], true),
        (vec![lock(1), unlock(2), lock(3)], true),
    ] {
        let r = Revocations::default();
        r.apply_synced(&entries, 0);
        assert_eq!(r.is_locked("alice"), locked, "{entries:?}");
        // A full re-read (Redis resync) changes nothing.
        r.apply_synced(&entries, 0);
        assert_eq!(r.is_locked("alice"), locked, "{entries:?} again");
    }
}

#[test]
fn locks_and_serials_survive_a_restart_through_the_journal() {
    let (dir, j) = journal();
    let r = Revocations::open(j, 0).unwrap();
    r.revoke(Entry::Lock {
        id: "alice".into(),
        at_ms: 5_000,
    })
    .unwrap();
    r.revoke(Entry::Serial {
        id: "0a1b".into(),
        at: 7,
    })
    .unwrap();
    r.revoke(Entry::Serial {
        id: "0A:1B".into(),
        at: 9,
    })
    .unwrap();
    let again = Revocations::open(Journal::in_data_dir(dir.path()), 10).unwrap();
    assert!(again.is_locked("alice"));
    assert_eq!(
        again.revoked_serials(),
        vec![(Serial::parse("0a1b").unwrap(), 7)],
        "one serial, revoked when first revoked"
    );
    let text = std::fs::read_to_string(dir.path().join("revocations.jsonl")).unwrap();
    assert!(
        text.contains(r#"{"kind":"lock","id":"alice","at_ms":5000}"#),
        "{text}"
    );
}
