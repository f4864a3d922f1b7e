//! `cargo workshop db up|down|status`: a throwaway PostgreSQL cluster and a
//! PgBouncer in front of it, under the target directory, for module 3.
//!
//! PgBouncer in transaction mode is the local stand-in for RDS Proxy: many
//! client connections (one per execution environment) share a few server
//! connections. A scenario that wants a small database, like a small RDS
//! instance, limits its own database's connections
//! ([`create_database`]).
//!
//! PostgreSQL refuses to run as root. When the lab runs as root (a
//! container, CI), the cluster runs as the `postgres` user that Debian's
//! package creates, through `runuser`; without such a user, run the lab as
//! an ordinary user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths::target_dir;

pub const PG_PORT: u16 = 55432;
pub const PGBOUNCER_PORT: u16 = 56432;
/// The superuser of the throwaway cluster, and its password (local only).
pub const ADMIN: (&str, &str) = ("postgres", "workshop");
/// The role functions connect as: not a superuser, so `max_connections`
/// binds it as it binds an application on RDS.
pub const APP: (&str, &str) = ("ticket_app", "workshop");

#[derive(Debug, Clone)]
pub struct Tools {
    pub bin: PathBuf,
    pub pgbouncer: PathBuf,
    /// `Some(user)` when the servers must run as another user than us.
    pub run_as: Option<String>,
}

/// Where the servers' files live: under the target directory, or, when the
/// servers run as another user, in a folder of the system's temporary
/// directory that user can reach.
pub fn home() -> PathBuf {
    if is_root() {
        std::env::temp_dir().join("ticket-drop-workshop-db")
    } else {
        target_dir().join("workshop").join("db")
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// PostgreSQL's server binaries: `pg_config --bindir`, else Debian's
/// versioned folders.
fn postgres_bin() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Finds what `db up` needs, or says what is missing and how to get it.
pub fn tools() -> Result<Tools, String> {
    let bin = postgres_bin().ok_or(
        "PostgreSQL's server is not installed (initdb, pg_ctl). On Debian or Ubuntu: \
         apt-get install postgresql pgbouncer; on macOS: brew install postgresql pgbouncer",
    )?;
    let pgbouncer = which("pgbouncer").or_else(|| {
        let p = PathBuf::from("/usr/sbin/pgbouncer");
        p.is_file().then_some(p)
    });
    let pgbouncer = pgbouncer.ok_or(
        "PgBouncer is not installed: apt-get install pgbouncer (or brew install pgbouncer)",
    )?;
    let run_as = if is_root() {
        let exists = Command::new("id")
            .arg("postgres")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !exists {
            return Err(
                "PostgreSQL does not run as root, and there is no postgres user to run it as: \
                        run the lab as an ordinary user"
                    .into(),
            );
        }
        Some("postgres".to_string())
    } else {
        None
    };
    Ok(Tools {
        bin,
        pgbouncer,
        run_as,
    })
}

impl Tools {
    /// A command run as the servers' user.
    fn command(&self, program: &Path) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn run(&self, program: &Path, args: &[&str], what: &str) -> Result<String, String> {
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "{what} failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Runs SQL as the superuser, directly on the cluster.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
            .arg(format!(
                "postgresql://{}:{}@127.0.0.1:{PG_PORT}/{database}",
                ADMIN.0, ADMIN.1
            ))
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(format!(
                "psql: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

impl Tools {
    /// Whether `user` can log in to `database` with `password` now: the
    /// rotation function's testSecret, and the check that an old password
    /// is refused. `Err` holds the server's reason.
    pub fn login(&self, database: &str, user: &str, password: &str) -> Result<(), String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-At", "-w"])
            .arg(format!(
                "host=127.0.0.1 port={PG_PORT} dbname={database} user={user}"
            ))
            .args(["-c", "SELECT 1"])
            .env("PGPASSWORD", password)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }
}

/// The URLs of a running pair.
pub struct Urls {
    pub postgres: String,
    pub pgbouncer: String,
}

/// The server URL (no database) for the admin user, direct.
pub fn admin_url() -> String {
    format!("postgres://{}:{}@127.0.0.1:{PG_PORT}", ADMIN.0, ADMIN.1)
}

/// The URL of `database` for the application role, direct or through
/// PgBouncer.
pub fn app_url(database: &str, through_pgbouncer: bool) -> String {
    let port = if through_pgbouncer {
        PGBOUNCER_PORT
    } else {
        PG_PORT
    };
    format!("postgres://{}:{}@127.0.0.1:{port}/{database}", APP.0, APP.1)
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

/// Whether both servers answer.
pub fn is_up() -> bool {
    port_open(PG_PORT) && port_open(PGBOUNCER_PORT)
}

/// Starts the cluster (creating it the first time) and PgBouncer.
pub fn up(max_connections: u32, pool_size: u32) -> Result<Urls, String> {
    let tools = tools()?;
    let home = home();
    let data = home.join("pg");
    let bouncer = home.join("pgbouncer");
    std::fs::create_dir_all(&bouncer)
        .map_err(|e| format!("cannot create {}: {e}", bouncer.display()))?;
    if let Some(user) = &tools.run_as {
        // The servers' user owns their files.
        let status = Command::new("chown")
            .args(["-R", user])
            .arg(&home)
            .status()
            .map_err(|e| format!("cannot run chown -R {user} {}: {e}", home.display()))?;
        if !status.success() {
            return Err(format!("cannot hand {} to {user}", home.display()));
        }
    }
    if !data.join("PG_VERSION").is_file() {
        eprintln!("Creating a PostgreSQL cluster in {} …", data.display());
        let pwfile = home.join("pwfile");
        std::fs::write(&pwfile, ADMIN.1)
            .map_err(|e| format!("cannot write {}: {e}", pwfile.display()))?;
        if let Some(user) = &tools.run_as {
            let _ = Command::new("chown")
                .args([user.as_str()])
                .arg(&pwfile)
                .status();
        }
        tools.run(
            &tools.bin.join("initdb"),
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                ADMIN.0,
                "--pwfile",
                &pwfile.display().to_string(),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            "initdb",
        )?;
        let _ = std::fs::remove_file(&pwfile);
    }
    if !port_open(PG_PORT) {
        let options = format!(
            "-p {PG_PORT} -c listen_addresses=127.0.0.1 -c max_connections={max_connections} \
             -c unix_socket_directories={} -c fsync=off",
            home.display()
        );
        tools.run(
            &tools.bin.join("pg_ctl"),
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &home.join("postgres.log").display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
            "pg_ctl start",
        )?;
    }
    // The application's role: not a superuser, owner of its databases.
    tools.psql(
        "postgres",
        &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{0}') THEN \
             CREATE ROLE {0} LOGIN PASSWORD '{1}' CREATEDB; END IF; END $$",
            APP.0, APP.1
        ),
    )?;
    if !port_open(PGBOUNCER_PORT) {
        let ini = bouncer.join("pgbouncer.ini");
        let users = bouncer.join("userlist.txt");
        std::fs::write(
            &users,
            format!(
                "\"{}\" \"{}\"\n\"{}\" \"{}\"\n",
                ADMIN.0, ADMIN.1, APP.0, APP.1
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", users.display()))?;
        std::fs::write(
            &ini,
            format!(
                "; Written by `cargo workshop db up`: the local stand-in for RDS Proxy.\n\
                 [databases]\n\
                 * = host=127.0.0.1 port={PG_PORT}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {PGBOUNCER_PORT}\n\
                 unix_socket_dir =\n\
                 auth_type = scram-sha-256\n\
                 auth_file = {users}\n\
                 ; One server connection per transaction, then back to the pool.\n\
                 pool_mode = transaction\n\
                 default_pool_size = {pool_size}\n\
                 max_client_conn = 5000\n\
                 ; sqlx sends this startup parameter; PgBouncer refuses unknown ones.\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 logfile = {log}\n\
                 pidfile = {pid}\n",
                users = users.display(),
                log = bouncer.join("pgbouncer.log").display(),
                pid = bouncer.join("pgbouncer.pid").display(),
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", ini.display()))?;
        if let Some(user) = &tools.run_as {
            let _ = Command::new("chown")
                .args(["-R", user.as_str()])
                .arg(&bouncer)
                .status();
        }
        tools.run(
            &tools.pgbouncer,
            &["-d", &ini.display().to_string()],
            "pgbouncer",
        )?;
        let started = Instant::now();
        while !port_open(PGBOUNCER_PORT) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !port_open(PGBOUNCER_PORT) {
            return Err(format!(
                "PgBouncer did not start; see {}",
                bouncer.join("pgbouncer.log").display()
            ));
        }
    }
    Ok(Urls {
        postgres: admin_url(),
        pgbouncer: format!(
            "postgres://{}:{}@127.0.0.1:{PGBOUNCER_PORT}",
            ADMIN.0, ADMIN.1
        ),
    })
}

/// Stops PgBouncer and the cluster (the files stay for next time).
pub fn down() -> Result<(), String> {
    let tools = tools()?;
    let home = home();
    let pid = home.join("pgbouncer").join("pgbouncer.pid");
    if let Ok(text) = std::fs::read_to_string(&pid)
        && let Ok(pid) = text.trim().parse::<i32>()
    {
        // SAFETY: a signal to the PgBouncer we started, by its pid file.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    if home.join("pg").join("postmaster.pid").is_file() {
        tools.run(
            &tools.bin.join("pg_ctl"),
            &[
                "-D",
                &home.join("pg").display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            "pg_ctl stop",
        )?;
    }
    Ok(())
}

/// A fresh database owned by the application role, accepting at most
/// `limit` connections (as a small instance's `max_connections` would).
pub fn create_database(tools: &Tools, name: &str, limit: Option<u32>) -> Result<(), String> {
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!("bad database name {name:?}"));
    }
    tools.psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    let limit = limit.map_or(String::new(), |n| format!(" CONNECTION LIMIT {n}"));
    tools.psql(
        "postgres",
        &format!("CREATE DATABASE {name} OWNER {}{limit}", APP.0),
    )?;
    Ok(())
}

/// Server connections to `database` now, from `pg_stat_activity`.
pub fn connections(tools: &Tools, database: &str) -> Result<usize, String> {
    tools
        .psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"),
        )?
        .parse()
        .map_err(|_| "pg_stat_activity answered something else than a count".into())
}

/// A database behind the lab's function.
#[derive(Debug, Clone)]
pub struct LabDatabase {
    /// Where the function connects (its `DATABASE_URL`).
    pub url: String,
    /// Where the schema is applied: the database itself, never a proxy.
    pub direct_url: String,
    /// A PostgreSQL database whose connections to sample, four times a
    /// second, from `pg_stat_activity`.
    pub watch: Option<String>,
    /// The binary whose `migrate` command applies the schema: the module's
    /// reference, whichever binary the run serves.
    pub migrator: PathBuf,
}

impl LabDatabase {
    /// Where the tickets are, for a person: "a fresh SQLite file,
    /// target/workshop/lab/serve-0.db" (relative to `root`), or "a fresh
    /// PostgreSQL database, lab_serve_0, through PgBouncer". Never the
    /// password the URL holds.
    pub fn describe(&self, root: &Path) -> String {
        if let Some(file) = self.url.strip_prefix("sqlite:") {
            let file = Path::new(file.split('?').next().unwrap_or(file));
            let file = file.strip_prefix(root).unwrap_or(file);
            return format!("a fresh SQLite file, {}", file.display());
        }
        let name = self
            .url
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .unwrap_or("?");
        let how = if self.url == self.direct_url {
            "directly"
        } else {
            "through PgBouncer"
        };
        format!("a fresh PostgreSQL database, {name}, {how}")
    }
}

/// Where a run keeps its tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseSpec {
    /// Whatever the module uses by default: memory in module 2, a fresh
    /// SQLite file from module 3 on.
    Default,
    /// The throwaway PostgreSQL of `cargo workshop db up`, a fresh database
    /// that takes at most `limit` connections; directly or through PgBouncer.
    Postgres {
        through_pgbouncer: bool,
        limit: Option<u32>,
    },
}

/// The database of one run: `scenario` and `k` name its SQLite file or its
/// PostgreSQL database, created afresh. `None` when the module keeps its
/// tickets in memory (`database` false).
pub fn prepare(
    database: bool,
    scenario: &str,
    k: usize,
    spec: DatabaseSpec,
    migrator: &std::path::Path,
) -> Result<Option<LabDatabase>, String> {
    match spec {
        DatabaseSpec::Default if !database => Ok(None),
        DatabaseSpec::Default => {
            let dir = target_dir().join("workshop").join("lab");
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let file = dir.join(format!("{scenario}-{k}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
            let url = format!("sqlite:{}?mode=rwc", file.display());
            Ok(Some(LabDatabase {
                url: url.clone(),
                direct_url: url,
                watch: None,
                migrator: migrator.to_path_buf(),
            }))
        }
        DatabaseSpec::Postgres {
            through_pgbouncer,
            limit,
        } => {
            if !is_up() {
                return Err(
                    "this scenario needs PostgreSQL and PgBouncer: start them with `cargo workshop db up`".into(),
                );
            }
            let tools = tools()?;
            let name = format!("lab_{}_{k}", scenario.replace('-', "_"));
            create_database(&tools, &name, limit)?;
            Ok(Some(LabDatabase {
                url: app_url(&name, through_pgbouncer),
                direct_url: app_url(&name, false),
                watch: Some(name),
                migrator: migrator.to_path_buf(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_described_without_its_password() {
        let root = Path::new("/repo");
        let sqlite = LabDatabase {
            url: "sqlite:/repo/target/workshop/lab/serve-0.db?mode=rwc".into(),
            direct_url: "sqlite:/repo/target/workshop/lab/serve-0.db?mode=rwc".into(),
            watch: None,
            migrator: PathBuf::new(),
        };
        assert_eq!(
            sqlite.describe(root),
            "a fresh SQLite file, target/workshop/lab/serve-0.db"
        );
        let proxied = LabDatabase {
            url: app_url("lab_serve_0", true),
            direct_url: app_url("lab_serve_0", false),
            watch: None,
            migrator: PathBuf::new(),
        };
        let text = proxied.describe(root);
        assert_eq!(
            text,
            "a fresh PostgreSQL database, lab_serve_0, through PgBouncer"
        );
        assert!(!text.contains(APP.1));
    }
}
