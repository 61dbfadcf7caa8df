//! The `certgate` command line; everything else lives in the library.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use certgate::cert::Serial;
use certgate::clock::SystemClock;
use certgate::config::{self, Problems, Source};

#[derive(Parser)]
#[command(
    name = "certgate",
    version,
    about = "Client-certificate single sign-on gateway"
)]
struct Cli {
    /// Log format on stderr; json writes one JSON object per line (audit events have
    /// `"target":"audit"`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "pretty",
        env = "CERTGATE_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The revocations of the certgate serving from `dir`: its journal, or Redis when its config
/// says so.
///
/// # Errors
/// Why they cannot be read (a certgate on Redis without its config, Redis away, a bad journal).
fn revocation_view(
    dir: &std::path::Path,
    config: Option<&certgate::config::Config>,
    now: i64,
) -> Result<certgate::revocation::Revocations, String> {
    use certgate::revocation::{Journal, RedisStore, Revocations};
    if let Some(certgate::revocation::StoreBackend::Redis(url)) = config.map(|c| &c.store.backend) {
        return RedisStore::new(url)
            .and_then(|store| Revocations::loaded_from_redis(Arc::new(store), now));
    }
    if Journal::redis_marker(dir).exists() {
        return Err(format!(
            "the certgate serving from {} keeps revocations in Redis: give --config with its config file",
            dir.display()
        ));
    }
    Revocations::open(Journal::in_data_dir(dir), now)
}

/// With several CAs, which CA may issue whom, as the configuration works it out.
fn print_bindings(identity: &certgate::identity::Mapping) {
    if identity.cas.len() < 2 {
        return;
    }
    let names = |cas: &[certgate::cert::IssuerCa]| {
        if cas.is_empty() {
            "any CA (client_ca.danger_any_ca_for_any_user)".to_string()
        } else {
            cas.iter()
                .map(|ca| &*ca.name)
                .collect::<Vec<_>>()
                .join(" or ")
        }
    };
    println!(
        "{} client CAs: each user signs in only with a certificate of their CA",
        identity.cas.len()
    );
    for user in identity.users.values().filter(|u| !u.disabled) {
        println!("  {}: {}", user.name, names(&user.ca));
    }
    if identity.allow_unlisted {
        println!("  users not listed: {}", names(&identity.unlisted_ca));
    }
}

/// A serial on the command line, in any spelling operators copy.
fn serial_arg(text: &str) -> Result<Serial, String> {
    Serial::parse(text).map_err(|e| {
        format!(
            "{e}; give a certificate serial: {}",
            certgate::cert::serial::SerialError::FORMS
        )
    })
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without --config: the quickstart with a demo CA in ./certgate-data.
    Serve {
        #[arg(long, env = "CERTGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides `data_dir`.
        #[arg(long, env = "CERTGATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Check a config file: exit 0 when valid, else print every problem and exit 2.
    CheckConfig {
        #[arg(long, env = "CERTGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The built-in CA: create it, issue client certificates (with .p12 for devices), list them.
    Ca {
        /// The data directory holding the CA (default: the config's data_dir, else ./certgate-data).
        #[arg(long, global = true, env = "CERTGATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long, env = "CERTGATE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: CaCommand,
    },
    /// One-time enrollment links that install a certificate on a phone, watch or browser.
    Enroll {
        #[command(subcommand)]
        command: EnrollCommand,
    },
    /// Signing keys: list them, or rotate (publish the next key now, sign with it later).
    Keys {
        #[arg(long, global = true, env = "CERTGATE_CONFIG")]
        config: Option<PathBuf>,
        /// The data directory (default: the config's data_dir, else ./certgate-data).
        #[arg(long, global = true, env = "CERTGATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Revoke a user's tokens, a certificate serial or one token id: every certgate using the
    /// same data directory (or, with store.backend = "redis", the same Redis) refuses it within
    /// a second, and after restarts.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["user", "serial", "device", "jti"])))]
    Revoke {
        /// Every session and bearer token of this user issued until now ("log out everywhere").
        #[arg(long)]
        user: Option<String>,
        /// This certificate (hex serial, any CA) and every token minted from it.
        #[arg(long)]
        serial: Option<String>,
        /// Sign out one device: every token minted from this certificate (hex serial) until
        /// now; the certificate itself stays valid and may sign in again.
        #[arg(long)]
        device: Option<String>,
        /// One token, by its id (the `jti` of the audit log's login and token events).
        /// Ids may start with `-`.
        #[arg(long, allow_hyphen_values = true)]
        jti: Option<String>,
        #[arg(long, env = "CERTGATE_CONFIG")]
        config: Option<PathBuf>,
        /// The data directory (default: the config's data_dir, else ./certgate-data).
        #[arg(long, env = "CERTGATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// What the rules decide for a URL, and why: exit 0 allow, 1 deny.
    Explain {
        #[arg(long, env = "CERTGATE_CONFIG")]
        config: PathBuf,
        /// The URL as the browser asks for it, e.g. https://grafana.example.com/admin.
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// The client's address, for network rules.
        #[arg(long)]
        client: Option<std::net::IpAddr>,
        /// As the holder of this certificate (PEM).
        #[arg(long, conflicts_with_all = ["token", "user"])]
        cert: Option<PathBuf>,
        /// As the holder of this certgate token (bearer or session).
        #[arg(long, conflicts_with = "user")]
        token: Option<String>,
        /// As this user (from [[users]]).
        #[arg(long)]
        user: Option<String>,
    },
    /// Print a tested proxy configuration for your hosts (config/proxies/ with your names).
    ProxyConfig {
        #[arg(value_enum)]
        proxy: ProxyKind,
        /// The app's host name, e.g. grafana.example.com.
        #[arg(long)]
        host: String,
        /// The app's base URL as the proxy reaches it, e.g. http://127.0.0.1:3000.
        #[arg(long)]
        upstream: String,
        /// A dedicated sign-in host for single sign-on across apps (without it, the app
        /// host asks for the certificate itself).
        #[arg(long)]
        auth_host: Option<String>,
        /// certgate's plain HTTP listener as the proxy reaches it.
        #[arg(long, default_value = "127.0.0.1:9180")]
        certgate: String,
        /// Traefik: print the static configuration (traefik.yml) instead of the routes.
        #[arg(long)]
        r#static: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Each key's id, when it signs from, and its state (next, current, previous, retired).
    List,
    /// Add the next key: published in JWKS at once, signing after --publish-ahead, so every
    /// replica knows it first. Deletes retired keys.
    Rotate {
        /// How long verifiers see the new key before it signs (replicas re-read keys every 2 s).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        publish_ahead: std::time::Duration,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a new CA (ECDSA P-256), or import an existing CA certificate and key.
    Init {
        #[arg(long, default_value = "certgate CA")]
        name: String,
        /// p256 (default; what browsers and phones accept) or ed25519 (curl/OpenSSL clients).
        #[arg(long, value_enum, default_value = "p256")]
        key_type: CaKeyType,
        #[arg(long, requires = "import_key")]
        import_cert: Option<PathBuf>,
        #[arg(long, requires = "import_cert")]
        import_key: Option<PathBuf>,
    },
    /// Issue a client certificate for a user (and device), or renew one by serial.
    Issue {
        #[arg(long, required_unless_present = "renew")]
        user: Option<String>,
        #[arg(long, conflicts_with = "renew")]
        device: Option<String>,
        /// A new certificate for the same user and device as this serial (see `ca list`).
        #[arg(long, conflicts_with = "user", value_parser = serial_arg)]
        renew: Option<Serial>,
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Where the .pem and .key go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Also write a PKCS#12 file for browsers and phones.
        #[arg(long)]
        p12: Option<PathBuf>,
        /// Legacy PKCS#12 encryption (3DES, SHA-1 MAC) for Android 13 and older and Wear OS.
        #[arg(long, requires = "p12")]
        legacy: bool,
        /// Read the PKCS#12 password from this file instead of generating one.
        #[arg(long, requires = "p12")]
        password_file: Option<PathBuf>,
    },
    /// Every certificate issued: serial, user, device, expiry, status.
    List,
    /// Revoke an issued certificate: certgate refuses it at once; run `ca crl` for proxies.
    Revoke {
        #[arg(value_parser = serial_arg)]
        serial: Serial,
    },
    /// Print (or write) a signed CRL of every revocation, for nginx `ssl_crl` and the like.
    Crl {
        /// DER instead of PEM (needs --out).
        #[arg(long, requires = "out")]
        der: bool,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Days until its next-update (refresh it before then: an expired CRL refuses everyone).
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CaKeyType {
    P256,
    Ed25519,
}

#[derive(Subcommand)]
enum EnrollCommand {
    /// Create a link (and QR code) that issues one certificate, once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        device: Option<String>,
        /// How long the link works.
        #[arg(long, default_value_t = 15)]
        minutes: i64,
        /// Validity of the certificate it issues.
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long, env = "CERTGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Without --config: the data directory holding the CA.
        #[arg(long, env = "CERTGATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Without --config: where people reach certgate, e.g. https://auth.example.com.
        #[arg(long)]
        public_url: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ProxyKind {
    Nginx,
    Traefik,
    Caddy,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::CheckConfig { config: None } => {
            println!("nothing to check: without --config, `certgate serve` runs the quickstart with embedded defaults");
            ExitCode::SUCCESS
        }
        Command::CheckConfig { config: Some(path) } => match load(&path, None) {
            Ok(config) => {
                println!("{}: ok", path.display());
                print_bindings(&config.identity);
                ExitCode::SUCCESS
            }
            Err(problems) => config_failure(&problems),
        },
        Command::Serve { config, data_dir } => serve(config, data_dir),
        Command::Ca {
            data_dir,
            config,
            command,
        } => ca(data_dir, config, command),
        Command::Enroll {
            command:
                EnrollCommand::Create {
                    user,
                    device,
                    minutes,
                    days,
                    config,
                    data_dir,
                    public_url,
                },
        } => enroll(&user, device, minutes, days, config, data_dir, public_url),
        Command::Keys {
            config,
            data_dir,
            command,
        } => keys(config, data_dir, command),
        Command::Revoke {
            user,
            serial,
            device,
            jti,
            config,
            data_dir,
        } => revoke([user, serial, device, jti], config, data_dir),
        Command::Explain {
            config,
            url,
            method,
            client,
            cert,
            token,
            user,
        } => explain(&config, &url, &method, client, cert, token, user),
        Command::ProxyConfig {
            proxy,
            host,
            upstream,
            auth_host,
            certgate,
            r#static,
        } => {
            use certgate::proxy_config::{render, Params, Proxy};
            let proxy = match proxy {
                ProxyKind::Nginx => Proxy::Nginx,
                ProxyKind::Traefik => Proxy::Traefik,
                ProxyKind::Caddy => Proxy::Caddy,
            };
            let params = Params {
                host,
                upstream,
                auth_host,
                certgate,
                traefik_static: r#static,
            };
            match render(proxy, &params) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("certgate proxy-config: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn ca(data_dir: Option<PathBuf>, config: Option<PathBuf>, command: CaCommand) -> ExitCode {
    use certgate::ca::store::CaStore;
    use certgate::ca::P12Kind;
    use certgate::clock::Clock;
    let loaded = match config.map(|path| load(&path, None)).transpose() {
        Ok(loaded) => loaded,
        Err(problems) => return config_failure(&problems),
    };
    let dir = data_dir
        .or_else(|| loaded.as_ref().map(|c| c.data_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("certgate-data"));
    let store = CaStore::new(&dir);
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("certgate ca: {e}");
        ExitCode::FAILURE
    };
    let usage = |flag: &str, problem: &str| {
        eprintln!("certgate ca: {flag}: {problem}");
        ExitCode::from(2)
    };
    match command {
        CaCommand::Init {
            name,
            key_type,
            import_cert,
            import_key,
        } => {
            let import = import_cert.as_deref().zip(import_key.as_deref());
            let key_type = match key_type {
                CaKeyType::P256 => certgate::ca::KeyType::P256,
                CaKeyType::Ed25519 => certgate::ca::KeyType::Ed25519,
            };
            match store.init(&name, key_type, import, SystemClock.now()) {
                Ok(_) => {
                    println!(
                        "CA ready: {} (key {}, mode 0600)",
                        store.cert_path().display(),
                        store.key_path().display()
                    );
                    println!("point client_ca.bundle at {}", store.cert_path().display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        CaCommand::Issue {
            user,
            device,
            renew,
            days,
            out,
            p12,
            legacy,
            password_file,
        } => {
            let (user, device) = match (user, renew) {
                (Some(user), _) => (user, device),
                (None, Some(serial)) => {
                    match store.list().map(|l| l.into_iter().find(|r| r.serial == serial)) {
                        Ok(Some(old)) => (old.user, old.device),
                        Ok(None) => return usage("--renew", &format!("no certificate with serial {serial} was issued here (see `certgate ca list`)")),
                        Err(e) => return fail(&e),
                    }
                }
                (None, None) => return usage("--user", "missing"),
            };
            if let Err(e) = certgate::ca::store::check_name(&user, 256) {
                return usage("--user", &e);
            }
            if let Some(Err(e)) = device
                .as_deref()
                .map(|d| certgate::ca::store::check_name(d, 64))
            {
                return usage("--device", &e);
            }
            if !(1..=3650).contains(&days) {
                return usage("--days", "must be between 1 and 3650");
            }
            let password = match (&p12, password_file) {
                (None, _) => None,
                (Some(_), Some(file)) => match std::fs::read_to_string(&file) {
                    Ok(text) => {
                        match text.lines().next().map(str::trim).filter(|p| !p.is_empty()) {
                            Some(p) => Some((p.to_string(), false)),
                            None => {
                                return usage("--password-file", "the file's first line is empty")
                            }
                        }
                    }
                    Err(e) => {
                        return usage(
                            "--password-file",
                            &format!("cannot read {}: {e}", file.display()),
                        )
                    }
                },
                (Some(_), None) => match certgate::jwt::random_id() {
                    Some(p) => Some((p, true)),
                    None => return fail(&"the system random number generator failed"),
                },
            };
            let kind = if legacy {
                P12Kind::Legacy
            } else {
                P12Kind::Modern
            };
            let p12_arg = p12
                .as_deref()
                .zip(password.as_ref())
                .map(|(path, (pw, _))| (path, kind, pw.as_str()));
            match store.issue(
                &user,
                device.as_deref(),
                days,
                &out,
                p12_arg,
                SystemClock.now(),
            ) {
                Ok(files) => {
                    let who = match &files.record.device {
                        Some(d) => format!("{user} (device {d})"),
                        None => user.clone(),
                    };
                    println!(
                        "issued serial {} for {who}, valid for {days} days",
                        files.record.serial
                    );
                    println!("  certificate: {}", files.cert.display());
                    println!("  key:         {} (mode 0600)", files.key.display());
                    if let (Some(path), Some((pw, generated))) = (files.p12, password) {
                        let label = if legacy {
                            "legacy: Android 13 and older, Wear OS"
                        } else {
                            "modern"
                        };
                        println!("  PKCS#12:     {} ({label})", path.display());
                        if generated {
                            println!("  password:    {pw}");
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        CaCommand::Revoke { serial } => match store.revoke(&serial, SystemClock.now()) {
            Ok(true) => {
                let actor = certgate::audit::Actor::default();
                certgate::audit::revoke(&actor, "serial", serial.as_str(), "certgate ca revoke");
                println!("revoked {serial}: certgate refuses it from now on; publish the CRL to your proxy with `certgate ca crl`");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("{serial} was revoked already");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        CaCommand::Crl { der, out, days } => {
            if !(1..=365).contains(&days) {
                return usage("--days", "must be between 1 and 365");
            }
            match store.crl(SystemClock.now(), days) {
                Ok((pem, der_bytes)) => {
                    let bytes = if der { der_bytes } else { pem.into_bytes() };
                    match out {
                        Some(path) => match std::fs::write(&path, bytes) {
                            Ok(()) => {
                                println!(
                                    "CRL written to {} (next update in {days} days)",
                                    path.display()
                                );
                                ExitCode::SUCCESS
                            }
                            Err(e) => fail(&format!("{}: {e}", path.display())),
                        },
                        None => {
                            print!("{}", String::from_utf8_lossy(&bytes));
                            ExitCode::SUCCESS
                        }
                    }
                }
                Err(e) => fail(&e),
            }
        }
        CaCommand::List => match store.list() {
            Ok(records) => {
                let now = SystemClock.now();
                // Unreadable revocations leave every status unknown, never "valid".
                let revoked = match certgate::ca::store::revoked_serials(&store.revoked_path()) {
                    Ok(set) => Some(set),
                    Err(e) => {
                        eprintln!("certgate ca list: warning: {e}: every status is unknown");
                        None
                    }
                };
                // `certgate revoke --serial` revokes in the revocation store, not in the CA.
                let store_view = match revocation_view(&dir, loaded.as_ref(), now) {
                    Ok(view) => Some(view),
                    Err(e) => {
                        eprintln!("certgate ca list: warning: {e}: a status that is not revoked by the CA is unknown");
                        None
                    }
                };
                println!(
                    "{:<34} {:<16} {:<16} {:<20} STATUS",
                    "SERIAL", "USER", "DEVICE", "EXPIRES"
                );
                for r in records {
                    let expires = time::OffsetDateTime::from_unix_timestamp(r.not_after)
                        .map(|t| t.date().to_string())
                        .unwrap_or_else(|_| r.not_after.to_string());
                    let status = if revoked.as_ref().is_some_and(|set| set.contains(&r.serial))
                        || store_view
                            .as_ref()
                            .is_some_and(|v| v.is_serial_revoked(r.serial.as_str()))
                    {
                        "revoked"
                    } else if revoked.is_none() || store_view.is_none() {
                        "unknown"
                    } else if r.not_after <= now {
                        "expired"
                    } else {
                        "valid"
                    };
                    println!(
                        "{:<34} {:<16} {:<16} {:<20} {status}",
                        r.serial,
                        r.user,
                        r.device.as_deref().unwrap_or("-"),
                        expires
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn enroll(
    user: &str,
    device: Option<String>,
    minutes: i64,
    days: i64,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    public_url: Option<String>,
) -> ExitCode {
    use certgate::ca::enroll::{EnrollStore, Enrollment};
    use certgate::clock::Clock;
    let usage = |flag: &str, problem: &str| {
        eprintln!("certgate enroll: {flag}: {problem}");
        ExitCode::from(2)
    };
    let (dir, base) = match config {
        Some(path) => match load(&path, None) {
            Ok(c) => (data_dir.unwrap_or(c.data_dir), public_url.unwrap_or_else(|| c.public_url.to_string())),
            Err(problems) => return config_failure(&problems),
        },
        None => match public_url {
            Some(url) => (data_dir.unwrap_or_else(|| PathBuf::from("certgate-data")), url),
            None => return usage("--public-url", "needed without --config: where people reach certgate, e.g. https://auth.example.com"),
        },
    };
    if !base.starts_with("https://") && !base.starts_with("http://") {
        return usage("--public-url", "must be an absolute http(s) URL");
    }
    if let Err(e) = certgate::ca::store::check_name(user, 256) {
        return usage("--user", &e);
    }
    if let Some(Err(e)) = device
        .as_deref()
        .map(|d| certgate::ca::store::check_name(d, 64))
    {
        return usage("--device", &e);
    }
    if !(1..=1440).contains(&minutes) {
        return usage("--minutes", "must be between 1 and 1440");
    }
    if !(1..=3650).contains(&days) {
        return usage("--days", "must be between 1 and 3650");
    }
    if !certgate::ca::store::CaStore::new(&dir).key_path().exists() {
        return usage(
            "--data-dir",
            &format!(
                "{} holds no CA (create one with `certgate ca init`)",
                dir.display()
            ),
        );
    }
    let enrollment = Enrollment {
        user: user.to_string(),
        device: device.clone(),
        days,
        expires_at: SystemClock.now() + minutes * 60,
    };
    let secret = match EnrollStore::new(&dir).create(&enrollment) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("certgate enroll: {e}");
            return ExitCode::FAILURE;
        }
    };
    let link = format!("{}/enroll/{secret}", base.trim_end_matches('/'));
    let who = device.map_or_else(|| user.to_string(), |d| format!("{user} ({d})"));
    println!("enrollment link for {who}: works once, for {minutes} minutes");
    println!("  {link}");
    match qrcode::QrCode::new(link.as_bytes()) {
        Ok(code) => {
            // Light modules drawn, dark ones left blank: scannable on a dark terminal.
            let art = code
                .render::<qrcode::render::unicode::Dense1x2>()
                .dark_color(qrcode::render::unicode::Dense1x2::Light)
                .light_color(qrcode::render::unicode::Dense1x2::Dark)
                .build();
            println!("{art}");
        }
        Err(e) => eprintln!("certgate enroll: no QR code: {e}"),
    }
    println!("Open it on the device (or scan the code): it explains how to install the certificate and shows its password once.");
    ExitCode::SUCCESS
}

fn keys(config: Option<PathBuf>, data_dir: Option<PathBuf>, command: KeysCommand) -> ExitCode {
    use certgate::clock::Clock;
    use certgate::jwt::keys::key_path;
    use certgate::jwt::{KeySet, KeyState};
    let loaded = match &config {
        Some(path) => match load(path, None) {
            Ok(c) => Some(c),
            Err(problems) => return config_failure(&problems),
        },
        None => None,
    };
    let max_lifetime = loaded
        .as_ref()
        .map_or(30 * 86_400 + 60, certgate::config::Config::max_lifetime);
    let dir = data_dir
        .or_else(|| loaded.map(|c| c.data_dir))
        .unwrap_or_else(|| PathBuf::from("certgate-data"))
        .join("keys");
    let now = SystemClock.now();
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("certgate keys: {e}");
        ExitCode::FAILURE
    };
    let set = match KeySet::load(&dir) {
        Ok(set) => set,
        Err(e) => return fail(&e),
    };
    let when = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| t.to_string())
    };
    match command {
        KeysCommand::List => {
            for k in set.all() {
                let state = format!("{:?}", set.state(k, now, max_lifetime)).to_lowercase();
                println!("{}  signs from {}  {state}", k.kid, when(k.created));
            }
            ExitCode::SUCCESS
        }
        KeysCommand::Rotate { publish_ahead } => {
            let from = now.saturating_add(i64::try_from(publish_ahead.as_secs()).unwrap_or(0));
            if set.all().iter().any(|k| k.created >= from) {
                return fail(&"a key that signs later than this one is already waiting (see `certgate keys list`)");
            }
            for k in set.all() {
                if set.state(k, now, max_lifetime) == KeyState::Retired {
                    let path = key_path(&dir, k);
                    match std::fs::remove_file(&path) {
                        Ok(()) => println!("deleted retired key {} ({})", k.kid, path.display()),
                        Err(e) => return fail(&format!("{}: {e}", path.display())),
                    }
                }
            }
            match KeySet::add(&dir, from) {
                Ok(path) => {
                    println!("next key {} published now, signs from {}; every certgate on this data directory picks it up within 2 s", path.display(), when(from));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

/// `what`: --user, --serial, --device, --jti (clap lets exactly one through).
fn revoke(
    what: [Option<String>; 4],
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> ExitCode {
    use certgate::clock::Clock;
    use certgate::revocation::{Entry, Journal};
    let now = SystemClock.now();
    let loaded = match &config {
        Some(path) => match load(path, None) {
            Ok(c) => Some(c),
            Err(problems) => return config_failure(&problems),
        },
        None => None,
    };
    let max_ttl = loaded.as_ref().map_or(30 * 86_400, |c| {
        i64::try_from(c.token.max_ttl.as_secs()).unwrap_or(i64::MAX)
    });
    let redis = loaded.as_ref().and_then(|c| match &c.store.backend {
        certgate::revocation::StoreBackend::Redis(url) => Some(url.clone()),
        certgate::revocation::StoreBackend::Embedded => None,
    });
    let crl_files = loaded
        .as_ref()
        .map(|c| c.client_ca.crl_files.clone())
        .unwrap_or_default();
    let dir = data_dir
        .or_else(|| loaded.map(|c| c.data_dir))
        .unwrap_or_else(|| PathBuf::from("certgate-data"));
    let [user, serial, device, jti] = what;
    let entry = match Entry::requested(
        user.as_deref(),
        serial.as_deref(),
        device.as_deref(),
        jti.as_deref(),
        SystemClock.now_ms(),
        max_ttl,
    ) {
        Ok(entry) => entry,
        Err(e) => {
            let e = e
                .replace("serial:", "--serial:")
                .replace("device:", "--device:");
            eprintln!("certgate revoke: {e}");
            return ExitCode::from(2);
        }
    };
    let what = match &entry {
        Entry::User { id, .. } => format!("every token of {id} issued until now"),
        Entry::Serial { id, .. } => format!("certificate {id} and every token minted from it"),
        Entry::Device { id, .. } => {
            format!("every token minted from certificate {id} until now (it may sign in again)")
        }
        Entry::Jti { id, .. } => format!("token {id}"),
    };
    // Through a loaded view, so a new cut-off covers every token minted after the last one.
    let (view, reach) = match &redis {
        Some(url) => (
            certgate::revocation::RedisStore::new(url).and_then(|store| {
                certgate::revocation::Revocations::loaded_from_redis(Arc::new(store), now)
            }),
            "every certgate sharing this Redis (store.redis_url)".to_string(),
        ),
        None => {
            if !dir.is_dir() {
                eprintln!("certgate revoke: {}: no such data directory (give --config or --data-dir: the one certgate serves from)", dir.display());
                return ExitCode::FAILURE;
            }
            if Journal::redis_marker(&dir).exists() {
                eprintln!("certgate revoke: the certgate serving from {} keeps revocations in Redis (store.backend = \"redis\"), not in this directory: give --config with its config file", dir.display());
                return ExitCode::FAILURE;
            }
            (
                certgate::revocation::Revocations::open(Journal::in_data_dir(&dir), now),
                format!("every certgate serving from {}", dir.display()),
            )
        }
    };
    let stored = view.and_then(|view| view.revoke(entry.clone()));
    match stored {
        Ok(()) => {
            let (kind, id) = entry.describe();
            certgate::audit::revoke(
                &certgate::audit::Actor::default(),
                kind,
                id,
                "certgate revoke",
            );
            println!("revoked {what}: {reach} refuses it within a second");
            if let Entry::Serial { id, .. } | Entry::Device { id, .. } = &entry {
                if let Ok(serial) = Serial::parse(id) {
                    let (known, text) =
                        certgate::revocation::known::describe(&serial, &dir, &crl_files);
                    if known {
                        println!("{text}");
                    } else {
                        eprintln!("certgate revoke: warning: {text}");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("certgate revoke: {e}");
            ExitCode::FAILURE
        }
    }
}

fn explain(
    path: &std::path::Path,
    url: &str,
    method: &str,
    client: Option<std::net::IpAddr>,
    cert: Option<PathBuf>,
    token: Option<String>,
    user: Option<String>,
) -> ExitCode {
    use certgate::clock::Clock;
    use certgate::explain::{explain, Who};
    let config = match load(path, None) {
        Ok(c) => c,
        Err(problems) => return config_failure(&problems),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let who = match (cert, token, user) {
        (Some(c), _, _) => Who::Cert(c),
        (_, Some(t), _) => Who::Token(t),
        (_, _, Some(u)) => Who::User(u),
        _ => Who::Nobody,
    };
    match explain(&config, &text, url, method, client, &who, SystemClock.now()) {
        Ok(e) => {
            println!("{}", e.text);
            if e.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(why) => {
            eprintln!("certgate explain: {why}");
            ExitCode::from(2)
        }
    }
}

fn load(
    path: &std::path::Path,
    data_dir: Option<&std::path::Path>,
) -> Result<config::Config, Problems> {
    let source = Source::file(path)?;
    config::load(&source, overrides(data_dir))
}

/// Environment overrides, then the command line's, which win.
fn overrides(data_dir: Option<&std::path::Path>) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    if let Some(dir) = data_dir {
        vars.push(("CERTGATE__DATA_DIR".into(), dir.display().to_string()));
    }
    vars
}

fn serve(config_path: Option<PathBuf>, data_dir: Option<PathBuf>) -> ExitCode {
    let reload: Option<certgate::Reloader> = config_path.clone().map(|path| {
        let data_dir = data_dir.clone();
        Box::new(move || load(&path, data_dir.as_deref())) as certgate::Reloader
    });
    let (config, banner) = match config_path {
        Some(path) => match load(&path, data_dir.as_deref()) {
            Ok(c) => (c, None),
            Err(problems) => return config_failure(&problems),
        },
        None => match quickstart(data_dir) {
            Ok(pair) => pair,
            Err(code) => return code,
        },
    };
    let state = match certgate::build_state(config, Arc::new(SystemClock)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("certgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(banner) = banner {
        println!("{banner}");
    }
    let result = actix_web::rt::System::new().block_on(certgate::serve(state, reload));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn quickstart(data_dir: Option<PathBuf>) -> Result<(config::Config, Option<String>), ExitCode> {
    let dir = data_dir.unwrap_or_else(|| PathBuf::from("certgate-data"));
    // The public URL follows the mTLS port, which an override may move.
    let mtls_port = std::env::var("CERTGATE__LISTEN__MTLS")
        .ok()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .map_or(9443, |a| a.port());
    let (demo, text) =
        certgate::quickstart::prepare(&dir, mtls_port, certgate::clock::Clock::now(&SystemClock))
            .map_err(|e| {
            eprintln!("certgate quickstart: {e}");
            ExitCode::FAILURE
        })?;
    let source = Source {
        text,
        origin: "quickstart".into(),
        base_dir: demo.data_dir.clone(),
    };
    let config = config::load(&source, overrides(None)).map_err(|p| config_failure(&p))?;
    let mtls_url = config.public_base().to_string();
    let banner = certgate::quickstart::banner(&demo, &config.listen, &mtls_url);
    Ok((config, Some(banner)))
}

fn config_failure(problems: &Problems) -> ExitCode {
    eprintln!("{problems}");
    ExitCode::from(2)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file or journald gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
