use super::*;

fn device_entry(serial: &str, now_ms: i64) -> Entry {
    Entry::device(&Serial::parse(serial).unwrap(), now_ms)
}

fn table() -> (tempfile::TempDir, Table) {
    let dir = tempfile::tempdir().unwrap();
    let t = table_in(dir.path());
    (dir, t)
}

/// Another process's view of the same database (its own connection).
fn table_in(dir: &std::path::Path) -> Table {
    Table::new(std::sync::Arc::new(crate::db::Db::open(dir).unwrap()))
}

#[test]
fn revoked_jti_is_remembered_until_it_would_expire() {
    let (dir, t) = table();
    let r = Revocations::open(t, 50).unwrap();
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
fn another_process_writing_is_seen_on_the_next_sync_and_a_restart_keeps_everything() {
    let (dir, t) = table();
    let server = Revocations::open(t, 0).unwrap();
    let cli = table_in(dir.path());
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
    let restarted = Revocations::open(table_in(dir.path()), 2).unwrap();
    assert!(restarted.is_jti_revoked("t1"));
    assert!(restarted.is_serial_revoked("0A1B"));
    assert!(restarted.is_user_revoked("bob", 4));
}

#[test]
fn a_malformed_row_fails_closed_and_what_was_known_stays_known() {
    let (dir, t) = table();
    let r = Revocations::open(t, 0).unwrap();
    r.revoke_jti("x", 99).unwrap();
    let other = crate::db::Db::open(dir.path()).unwrap();
    other
        .write(|tx| tx.execute("INSERT INTO revocations (entry) VALUES ('nonsense')", []))
        .unwrap();
    assert!(r.sync(2).is_err());
    assert!(r.is_jti_revoked("x"), "what was known stays known");
    assert_eq!(r.stale(2, 10), None, "stale only after max_staleness");
    let why = r.stale(20, 10).unwrap();
    assert!(
        why.contains("not a revocation") && why.contains("certgate.db"),
        "{why}"
    );
    assert!(Revocations::open(table_in(dir.path()), 0).is_err());
}

#[test]
fn an_unreadable_database_is_trouble_not_a_clean_slate() {
    let (dir, t) = table();
    let r = Revocations::open(t, 0).unwrap();
    r.revoke_jti("x", 99).unwrap();
    r.sync(1).unwrap();
    let other = crate::db::Db::open(dir.path()).unwrap();
    other
        .write(|tx| tx.execute_batch("DROP TABLE revocations"))
        .unwrap();
    assert!(r.sync(2).is_err());
    assert!(r.is_jti_revoked("x"));
}

#[test]
fn pruning_removes_expired_token_ids_and_covered_cutoffs_only() {
    let (dir, t) = table();
    let r = Revocations::open(t, 0).unwrap();
    let now = 1_000_000;
    // 2,000 token ids, all but 10 of them expired.
    for i in 0..2_000 {
        let until = if i < 10 {
            now + 600
        } else {
            now - crate::jwt::LEEWAY - i
        };
        r.revoke_jti(&format!("jti-{i}"), until).unwrap();
    }
    for ms in [1_000, 5_000, 3_000] {
        r.revoke_user("alice", ms).unwrap();
        r.revoke(device_entry("0a", ms)).unwrap();
    }
    r.revoke(Entry::Lock {
        id: "eve".into(),
        at_ms: 1,
    })
    .unwrap();
    r.revoke(Entry::Unlock {
        id: "eve".into(),
        at_ms: 2,
    })
    .unwrap();
    r.revoke(Entry::Serial {
        id: "0b".into(),
        at: 1,
    })
    .unwrap();
    let pruned = r.prune(now).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            expired: 1_990,
            superseded: 4
        }
    );
    let rows = table_in(dir.path()).rows().unwrap();
    assert_eq!(
        rows,
        10 + 2 + 3,
        "live ids, the latest cut-offs, lock, unlock, serial"
    );
    assert_eq!(r.jti_count(), 10, "the view forgets them too");
    // A restart from the pruned table decides exactly as before.
    let again = Revocations::open(table_in(dir.path()), now).unwrap();
    assert!(again.is_jti_revoked("jti-3") && !again.is_jti_revoked("jti-11"));
    // The third cut-off (asked for at 3,000, written just past the 5,000 before it) stays.
    assert!(again.is_user_revoked("alice", 5_001) && !again.is_user_revoked("alice", 5_002));
    assert!(again.is_device_revoked("0a", 5_001) && !again.is_device_revoked("0a", 5_002));
    assert!(!again.is_locked("eve"));
    assert!(again.is_serial_revoked("0b"));
    assert_eq!(r.prune(now).unwrap(), Pruned::default(), "nothing twice");
}

#[test]
fn a_pruned_token_id_can_no_longer_be_presented_its_token_has_expired() {
    // The proof that pruning lets nobody in: an id is pruned only once `exp + LEEWAY <= now`,
    // and from then on the token fails its own expiry check before revocation is asked.
    let now = 1_900_000_000;
    let (dir, t) = table();
    let keys = crate::jwt::KeySet::load_or_create(&dir.path().join("keys"), now).unwrap();
    let tokens = crate::jwt::Tokens::new(keys, "https://auth.example.test");
    let alice = crate::jwt::Subject {
        user: "alice".into(),
        ..crate::jwt::Subject::default()
    };
    let (jwt, claims) = tokens
        .mint(crate::jwt::TokenKind::Bearer, &alice, 60, now)
        .unwrap();
    let r = Revocations::open(t, now).unwrap();
    r.revoke_jti(&claims.jti, claims.exp).unwrap();
    let horizon = claims.exp + crate::jwt::LEEWAY;
    assert_eq!(
        r.prune(horizon - 1).unwrap().expired,
        0,
        "kept while it could be used"
    );
    assert!(tokens
        .verify(&jwt, crate::jwt::TokenKind::Bearer, horizon - 1)
        .is_ok());
    assert_eq!(r.prune(horizon).unwrap().expired, 1);
    assert!(!Revocations::open(table_in(dir.path()), horizon)
        .unwrap()
        .is_jti_revoked(&claims.jti));
    assert!(
        tokens
            .verify(&jwt, crate::jwt::TokenKind::Bearer, horizon)
            .is_err(),
        "the token is refused as expired at the moment its revocation is pruned"
    );
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
    // Its journal, imported into the database when it is first opened.
    let dir = tempfile::tempdir().unwrap();
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
    let r = Revocations::open(table_in(dir.path()), 50).unwrap();
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
fn locks_and_serials_survive_a_restart_through_the_table() {
    let (dir, t) = table();
    let r = Revocations::open(t, 0).unwrap();
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
    let again = Revocations::open(table_in(dir.path()), 10).unwrap();
    assert!(again.is_locked("alice"));
    assert_eq!(
        again.revoked_serials(),
        vec![(Serial::parse("0a1b").unwrap(), 7)],
        "one serial, revoked when first revoked"
    );
    // Rows keep the journal's line format (an import and a new write of one entry are one row).
    let stored: i64 = crate::db::Db::open(dir.path())
        .unwrap()
        .read(|c| {
            c.query_row(
                r#"SELECT count(*) FROM revocations WHERE entry = '{"kind":"lock","id":"alice","at_ms":5000}'"#,
                [],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(stored, 1);
}

mod compaction {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = Entry> {
        let who = prop::sample::select(vec!["alice", "bob", "carol"]);
        let serial = prop::sample::select(vec!["0a", "0b", "00:0c", "zz"]);
        let jti = prop::sample::select(vec!["j1", "j2", "j3", "AAAAAAAAAAAAAAAAAAAAAA"]);
        let ms = 0i64..20_000;
        prop_oneof![
            (jti, 0i64..20).prop_map(|(id, until)| Entry::Jti {
                id: id.into(),
                until
            }),
            (who.clone(), ms.clone(), any::<bool>()).prop_map(|(id, t, with_ms)| Entry::User {
                id: id.into(),
                at: t / 1000,
                at_ms: with_ms.then_some(t),
            }),
            (serial.clone(), ms.clone(), any::<bool>()).prop_map(|(id, t, with_ms)| {
                Entry::Device {
                    id: id.into(),
                    at: t / 1000,
                    at_ms: with_ms.then_some(t),
                }
            }),
            (serial, 0i64..20).prop_map(|(id, at)| Entry::Serial { id: id.into(), at }),
            (who.clone(), ms.clone()).prop_map(|(id, at_ms)| Entry::Lock {
                id: id.into(),
                at_ms
            }),
            (who, ms).prop_map(|(id, at_ms)| Entry::Unlock {
                id: id.into(),
                at_ms
            }),
        ]
    }

    fn view(entries: &[Entry], now: i64) -> view::View {
        let mut v = view::View::default();
        v.apply_read(entries, now);
        v
    }

    proptest! {
        /// A view of the compacted entries decides as the view of all of them.
        #[test]
        fn a_compacted_store_decides_every_check_as_the_whole_history(
            entries in prop::collection::vec(entry(), 0..60),
            now in 0i64..30,
        ) {
            let whole = view(&entries, now);
            let compacted = entry::compact(&entries, now);
            prop_assert!(compacted.len() <= entries.len());
            let small = view(&compacted, now);
            prop_assert_eq!(&whole.users, &small.users);
            prop_assert_eq!(&whole.serials, &small.serials);
            prop_assert_eq!(&whole.devices, &small.devices);
            prop_assert_eq!(&whole.locks, &small.locks);
            for jti in ["j1", "j2", "j3", "AAAAAAAAAAAAAAAAAAAAAA"] {
                prop_assert_eq!(whole.jtis.contains(jti), small.jtis.contains(jti));
            }
        }
    }

    #[test]
    fn compaction_drops_expired_token_ids_and_superseded_cut_offs() {
        let entries = [
            Entry::Jti {
                id: "old".into(),
                until: 10,
            },
            Entry::Jti {
                id: "live".into(),
                until: 500,
            },
            Entry::user("alice", 1_000),
            Entry::user("alice", 5_000),
            Entry::Lock {
                id: "bob".into(),
                at_ms: 1,
            },
            Entry::Lock {
                id: "bob".into(),
                at_ms: 2,
            },
        ];
        let now = 10 + crate::jwt::LEEWAY;
        let mut kept = entry::compact(&entries, now);
        kept.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            kept,
            [
                Entry::Jti {
                    id: "live".into(),
                    until: 500
                },
                Entry::Lock {
                    id: "bob".into(),
                    at_ms: 2
                },
                Entry::user("alice", 5_000),
            ]
        );
    }
}
