//! `qqbridge qq …`: a WebQQ client on the command line (log in, list contacts, listen, send,
//! log out) over the library's `webqq` module; part of the binary, not of the library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;

use qqbridge::webqq::api::poll2::PollAnswer;
use qqbridge::webqq::api::ptqrlogin::QrState;
use qqbridge::webqq::client::{ClientConfig, WebQqClient};
use qqbridge::webqq::content::Content;
use qqbridge::webqq::directory::Directory;
use qqbridge::webqq::login::{PasswordLogin, PasswordStart, QrLogin, relink};
use qqbridge::webqq::session::Session;
use qqbridge::webqq::{Did, GroupNumber, QqNumber, Secret};

#[derive(Debug, clap::Args)]
pub struct QqArgs {
    /// Send every QQ host name to this address (an emulator); ordinary DNS when absent.
    #[arg(long, env = "QQBRIDGE_QQ_CONNECT")]
    connect: Option<SocketAddr>,
    /// An extra CA certificate (PEM) to trust, e.g. the emulator's.
    #[arg(long, env = "QQBRIDGE_QQ_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Where the session is stored after a login and read by the other commands (mode 0600).
    #[arg(long, default_value = "qq-session.json")]
    session: PathBuf,
    #[command(subcommand)]
    command: QqCommand,
}

#[derive(Debug, Subcommand)]
enum QqCommand {
    /// Log in by QR code: the code is drawn here and saved as a PNG; scan it with QQ.
    LoginQr {
        /// Where to save the QR image.
        #[arg(long, default_value = "qq-login-qr.png")]
        qr_out: PathBuf,
    },
    /// Log in with a password (read from QQBRIDGE_QQ_PASSWORD or standard input).
    LoginPassword {
        /// The QQ number.
        qq: u64,
        /// Where to save a captcha image if one is asked for.
        #[arg(long, default_value = "qq-captcha.jpg")]
        captcha_out: PathBuf,
    },
    /// Reopen the stored session (relink) without a new login.
    Relink,
    /// List friends, groups and discussions with their stable numbers.
    Contacts,
    /// Print incoming events until interrupted (or `--count` events).
    Listen {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Send a text message.
    Send {
        /// friend, group or discussion.
        #[arg(value_parser = ["friend", "group", "discussion"])]
        kind: String,
        /// The friend's QQ number, the group's number or the discussion id.
        target: u64,
        /// The text.
        text: String,
    },
    /// Log out (logout2) and delete the stored session.
    Logout,
}

fn client_config(args: &QqArgs) -> anyhow::Result<ClientConfig> {
    let ca = match &args.ca_cert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    Ok(match args.connect {
        Some(addr) => ClientConfig::redirect_all(addr, ca),
        None => ClientConfig {
            extra_root_ca_pem: ca.map(std::sync::Arc::from),
            ..ClientConfig::default()
        },
    })
}

pub async fn run_qq(args: QqArgs) -> anyhow::Result<()> {
    let config = client_config(&args)?;
    match &args.command {
        QqCommand::LoginQr { qr_out } => {
            let client = WebQqClient::new(config)?;
            login_qr(&client, qr_out).await?;
            save_session(&client, &args.session)
        }
        QqCommand::LoginPassword { qq, captcha_out } => {
            let client = WebQqClient::new(config)?;
            let password = read_password()?;
            let nick = match PasswordLogin::start(&client, QqNumber::new(*qq), &password).await? {
                PasswordStart::Ready(login) => login.submit(&client, None).await?,
                PasswordStart::Captcha(login, image) => {
                    std::fs::write(captcha_out, &image)
                        .with_context(|| format!("cannot write {}", captcha_out.display()))?;
                    println!("captcha saved to {}; type the code:", captcha_out.display());
                    let code = read_line()?;
                    login.submit(&client, Some(&code)).await?
                }
            };
            println!("logged in as {nick}");
            save_session(&client, &args.session)
        }
        QqCommand::Relink => {
            let client = restore(config, &args.session)?;
            relink(&client).await?;
            println!("session relinked");
            save_session(&client, &args.session)
        }
        QqCommand::Contacts => {
            let client = restore(config, &args.session)?;
            print_contacts(&Directory::load(&client).await?);
            Ok(())
        }
        QqCommand::Listen { count } => {
            let client = restore(config, &args.session)?;
            listen(&client, *count, &args.session).await
        }
        QqCommand::Send { kind, target, text } => {
            let client = restore(config, &args.session)?;
            send(&client, kind, *target, text).await?;
            // The stored session remembers the last msg_id so the next command continues it.
            save_session(&client, &args.session)
        }
        QqCommand::Logout => {
            let client = restore(config, &args.session)?;
            client.logout().await?;
            std::fs::remove_file(&args.session).ok();
            println!("logged out");
            Ok(())
        }
    }
}

async fn login_qr(client: &WebQqClient, qr_out: &Path) -> anyhow::Result<()> {
    for _attempt in 0..10 {
        let (login, png) = QrLogin::start(client).await?;
        std::fs::write(qr_out, &png)
            .with_context(|| format!("cannot write {}", qr_out.display()))?;
        match qqbridge::terminal::render_qr_png(&png) {
            Ok(text) => println!("{text}"),
            Err(reason) => println!("(cannot draw the QR code here: {reason})"),
        }
        println!("scan the QR code with QQ (also saved to {})", qr_out.display());
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match login.state(client).await? {
                QrState::Waiting => {}
                QrState::Scanned => println!("scanned; confirm on the phone"),
                QrState::Expired => {
                    println!("the QR code expired; fetching a new one");
                    break;
                }
                QrState::Confirmed { check_sig_url, nick } => {
                    let qq = login.finish(client, &check_sig_url, &nick).await?;
                    println!("logged in as {nick} ({qq})");
                    return Ok(());
                }
                QrState::Failed(answer) => {
                    bail!("QR login failed ({}): {}", answer.code, answer.message)
                }
            }
        }
    }
    bail!("gave up after 10 expired QR codes")
}

fn read_password() -> anyhow::Result<Secret<String>> {
    if let Ok(password) = std::env::var("QQBRIDGE_QQ_PASSWORD") {
        return Ok(Secret::new(password));
    }
    eprintln!("password:");
    Ok(Secret::new(read_line()?))
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("cannot read standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn save_session(client: &WebQqClient, path: &Path) -> anyhow::Result<()> {
    let session = client.session().context("no session to save")?;
    let json = serde_json::to_string_pretty(&session)?;
    qqbridge::store::write_private(path, json.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("session saved to {}", path.display());
    Ok(())
}

fn restore(config: ClientConfig, path: &Path) -> anyhow::Result<WebQqClient> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("no stored session at {} (log in first)", path.display()))?;
    let session: Session = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a stored session", path.display()))?;
    Ok(WebQqClient::restore(config, &session)?)
}

fn print_contacts(directory: &Directory) {
    println!("friends:");
    for friend in directory.friends.values() {
        let qq = friend.qq.map(|q| q.to_string()).unwrap_or_else(|| "?".into());
        let mark = friend.markname.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        println!("  {qq}  {}{mark}", friend.nick);
    }
    println!("groups:");
    for group in directory.groups.values() {
        let number = group.number.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        println!("  {number}  {}", group.name);
    }
    println!("discussions:");
    for discussion in directory.discussions.values() {
        println!("  {}  {}", discussion.did, discussion.name);
    }
}

async fn listen(client: &WebQqClient, count: Option<usize>, session: &Path) -> anyhow::Result<()> {
    let mut seen = 0usize;
    let mut failures = 0u32;
    while count.is_none_or(|c| seen < c) {
        match client.poll().await {
            Ok(PollAnswer::Events(events)) => {
                failures = 0;
                for event in events {
                    println!("{}", serde_json::to_string(&event)?);
                    seen += 1;
                }
            }
            Ok(PollAnswer::Idle | PollAnswer::Suspicious) => failures = 0,
            Err(e) if e.is_kicked() => bail!("logged in elsewhere: {e}"),
            Err(e) if e.needs_relogin() => {
                eprintln!("session trouble ({e}); relinking");
                relink(client).await?;
                save_session(client, session)?;
            }
            Err(e) => {
                failures += 1;
                if failures > 5 {
                    return Err(e.into());
                }
                eprintln!("poll failed ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(u64::from(failures))).await;
            }
        }
    }
    Ok(())
}

async fn send(client: &WebQqClient, kind: &str, target: u64, text: &str) -> anyhow::Result<()> {
    let directory = Directory::load(client).await?;
    for part in qqbridge::webqq::content::split_text(text, qqbridge::webqq::content::MAX_TEXT_BYTES)
    {
        let content = Content::text(part);
        let answer = match kind {
            "friend" => {
                let uin = directory.uin_of(QqNumber::new(target)).context("no such friend")?;
                client.send_buddy(uin, &content).await?
            }
            "group" => {
                let group =
                    directory.group_by_number(GroupNumber::new(target)).context("no such group")?;
                client.send_group(group.gid, group.code, &content).await?
            }
            _ => client.send_discussion(Did::new(target), &content).await?,
        };
        println!("sent ({answer:?})");
    }
    Ok(())
}
