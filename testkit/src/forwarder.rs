//! A TCP forwarder in front of a server that a test can cut and restore, to play an outage
//! without touching the real server.

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards connections on `127.0.0.1:`[`port`](Forwarder::port) to a target. While cut, it
/// accepts and at once closes every new connection, as a restarting server does, and cutting
/// it ends every connection it forwards. Dropping it stops it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let target = ("127.0.0.1".to_owned(), server.local_addr()?.port());
/// let forwarder = mpm_testkit::Forwarder::start(target).await?;
/// let mut client = tokio::net::TcpStream::connect(("127.0.0.1", forwarder.port())).await?;
/// client.write_all(b"ping").await?;
/// let (mut accepted, _) = server.accept().await?;
/// let mut buf = [0; 4];
/// accepted.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"ping");
///
/// forwarder.set_up(false);
/// assert_eq!(client.read(&mut buf).await?, 0, "cut: the connection ends");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Forwarder {
    port: u16,
    /// `true` while forwarding; every forwarded connection ends when it turns `false`.
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forwarder {
    /// Starts forwarding to `target` (host, port), up.
    ///
    /// # Errors
    ///
    /// When no port on 127.0.0.1 can be listened on.
    pub async fn start(target: (String, u16)) -> std::io::Result<Forwarder> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (up, rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*rx.borrow() {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    // As drivers set on their own sockets: without it, Nagle's algorithm and
                    // delayed acknowledgements stall small queries for tens of ms.
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                    // Both sockets close here.
                });
            }
        });
        Ok(Forwarder { port, up, task })
    }

    /// The port on 127.0.0.1 to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restores (`true`) or cuts (`false`) the forwarding.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[cfg(feature = "postgres")]
impl Forwarder {
    /// A forwarder to the PostgreSQL server that `server` names (its first TCP host, else
    /// 127.0.0.1; its first port, else 5432), and `server`'s user, password and database
    /// reached through the forwarder.
    ///
    /// # Errors
    ///
    /// As [`Forwarder::start`].
    pub async fn to_postgres(
        server: &tokio_postgres::Config,
    ) -> std::io::Result<(Forwarder, tokio_postgres::Config)> {
        let host = match server.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = server.get_ports().first().copied().unwrap_or(5432);
        let forwarder = Forwarder::start((host, port)).await?;
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(forwarder.port());
        if let Some(user) = server.get_user() {
            config.user(user);
        }
        if let Some(password) = server.get_password() {
            config.password(password);
        }
        if let Some(dbname) = server.get_dbname() {
            config.dbname(dbname);
        }
        Ok((forwarder, config))
    }
}
