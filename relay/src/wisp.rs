//! Wisp: many TCP streams over one WebSocket (MercuryWorkshop's protocol, v1,
//! and v2 with password authentication and this relay's client credit).
//!
//! [`wire`] is the packet format, `mux` carries the streams of one
//! WebSocket (each in a `stream` task), and this file does the handshake.
//!
//! Client to server, the server grants each stream a buffer of
//! [`BUFFER_PACKETS`] DATA packets and tops it up with CONTINUE as the
//! stream's target takes the bytes, so a slow target throttles only its own
//! stream: the WebSocket reader never waits on a TCP write. Credit counts
//! packets, not bytes, so bytes are bounded separately: all the streams of one
//! WebSocket together queue at most [`WS_BUFFER_BYTES`] for their targets.
//! Past that the reader stops reading the WebSocket until the targets take
//! some, pushing back on the client instead of buffering more.
//!
//! Server to client, the relay reads each target as fast as the WebSocket
//! takes the bytes, unless the client accepted the client credit extension
//! ([`wire::EXT_CLIENT_CREDIT`]): then each stream sends only as many DATA
//! packets as the client granted, and a stream without credit leaves its
//! target unread while the others flow.

mod mux;
mod stream;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::config::Config;
use crate::end::{fail, refuse, CLOSE_TIMEOUT};
use crate::log::Outcome;
use crate::relay::{echo_protocol, Stats, Ws, HANDSHAKE_TIMEOUT};
use wire::{reason, Info, EXT_CLIENT_CREDIT, EXT_PASSWORD, INFO};

/// The subprotocol a Wisp v2 client offers (as `@mercuryworkshop/wisp-js` does).
pub const SUBPROTOCOL: &str = "wisp-v2";
/// The name a Wisp v1 client may offer for itself.
const SUBPROTOCOL_V1: &str = "wisp-v1";

/// DATA packets a stream may have queued toward its target: the credit that
/// CONTINUE grants.
pub const BUFFER_PACKETS: u32 = 64;
/// Bytes one WebSocket's streams may have queued for their targets, all
/// together. Credit counts packets of up to `--max-message` bytes, so it bounds
/// no byte count; when this budget is spent the reader waits for the targets
/// (backpressure on the client) instead of queueing more. With the defaults a
/// WebSocket so holds at most this plus one message.
pub const WS_BUFFER_BYTES: usize = 16 << 20;

/// Picks the response's subprotocol on the Wisp path and the version. Any offer means
/// v2, as in the reference server (`@mercuryworkshop/wisp-js`): `wisp-v2` when offered,
/// else the first name offered, echoed so that the browser accepts the handshake
/// (epoxy-tls offers a random name of its own). No offer is v1, which names none, and so
/// is an offer of `wisp-v1` alone.
/// Returns whether it is v2.
pub fn select_protocol(req: &Request, mut resp: Response) -> (Response, bool) {
    let chosen = echo_protocol(req, &mut resp, SUBPROTOCOL);
    // A client that names v1 itself gets v1.
    let v2 = chosen.is_some_and(|p| p != SUBPROTOCOL_V1);
    (resp, v2)
}

/// The server's INFO: version 2.0, the password extension with its
/// "required" flag if credentials are configured, and the client credit offer.
fn server_info(password_required: bool) -> Message {
    let mut extensions = Vec::new();
    if password_required {
        extensions.push(wire::server_password_extension(true));
    }
    extensions.push(wire::client_credit_offer());
    Message::binary(wire::encode_info(&Info {
        major: 2,
        minor: 0,
        extensions,
    }))
}

/// What a client's INFO asks for.
#[derive(Debug, PartialEq, Eq)]
struct ClientInfo {
    credentials: Option<(String, String)>,
    /// The initial credit per stream, if the client accepted client credit.
    credit: Option<u32>,
}

/// Reads a client's INFO payload; an error is a protocol violation.
fn client_info(payload: &[u8]) -> Result<ClientInfo, String> {
    let info = wire::decode_info(payload).map_err(|e| e.0)?;
    let credentials = info
        .extension(EXT_PASSWORD)
        .map(wire::decode_password)
        .transpose()
        .map_err(|e| e.0)?;
    let credit = info
        .extension(EXT_CLIENT_CREDIT)
        .map(wire::decode_client_credit)
        .transpose()
        .map_err(|e| e.0)?;
    Ok(ClientInfo {
        credentials,
        credit,
    })
}

/// Compares without stopping at the first difference, so the time taken does
/// not tell how much of a guessed password was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(cfg: &Config, user: &str, pass: &str) -> bool {
    cfg.wisp_auth.iter().fold(false, |ok, (u, p)| {
        ok | (same(u.as_bytes(), user.as_bytes()) & same(p.as_bytes(), pass.as_bytes()))
    })
}

/// What the handshake settled.
#[derive(Debug, Default)]
struct Session {
    /// The relay sent INFO, offering client credit.
    sent_info: bool,
    /// The client's INFO has been read (during the handshake, when
    /// authentication needs it first).
    info_read: bool,
    /// The initial credit per stream, when the client accepted client credit.
    client_credit: Option<u32>,
}

/// Why the handshake did not complete.
enum Handshake {
    /// Credentials missing or wrong: the reason code and the text.
    Refused(u8, String),
    /// The client's INFO breaks the rules.
    Violation(String),
    Failed(String),
}

/// Serves one WebSocket on the Wisp path until it closes; writes one log line
/// per stream, and returns the WebSocket's outcome.
pub(crate) async fn serve(
    ws: Ws,
    peer: SocketAddr,
    cfg: Arc<Config>,
    v2: bool,
    stats: &mut Stats,
) -> Outcome {
    let (mut sink, mut stream) = ws.split();
    let auth = !cfg.wisp_auth.is_empty();
    let (why, code, text) = match handshake(&mut sink, &mut stream, &cfg, v2 || auth).await {
        Ok(session) => return mux::serve_streams(sink, stream, peer, cfg, session, stats).await,
        Err(Handshake::Failed(e)) => return Outcome::Error(e),
        Err(Handshake::Refused(why, text)) => (why, CloseCode::Policy, text),
        Err(Handshake::Violation(text)) => {
            (reason::INCOMPATIBLE_EXTENSIONS, CloseCode::Protocol, text)
        }
    };
    let Ok(mut ws) = sink.reunite(stream) else {
        return Outcome::Error("handshake failed".into());
    };
    // The CLOSE on stream 0 says why in Wisp's terms, the close frame in words.
    let close = Message::binary(wire::encode_close(0, why));
    let _ = timeout(CLOSE_TIMEOUT, ws.send(close)).await;
    match code {
        CloseCode::Policy => refuse(ws, code, text).await,
        _ => fail(ws, code, text).await,
    }
}

/// Sends INFO (for v2, or when credentials are needed), checks the client's
/// credentials if required, then grants the initial credit with CONTINUE on
/// stream 0.
async fn handshake(
    sink: &mut SplitSink<Ws, Message>,
    stream: &mut SplitStream<Ws>,
    cfg: &Config,
    send_info: bool,
) -> Result<Session, Handshake> {
    let failed = |e: WsError| Handshake::Failed(format!("client: {e}"));
    let auth = !cfg.wisp_auth.is_empty();
    let mut session = Session {
        sent_info: send_info,
        ..Session::default()
    };
    if send_info {
        sink.send(server_info(auth)).await.map_err(failed)?;
    }
    if auth {
        let first = timeout(HANDSHAKE_TIMEOUT, async {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Binary(p)) => return Some(p),
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                    _ => return None,
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let missing = || {
            Handshake::Refused(
                reason::AUTH_MISSING,
                "Wisp authentication required: no credentials in the client's INFO".into(),
            )
        };
        let info = first
            .and_then(|p| wire::decode_packet(p).ok())
            .filter(|p| p.kind == INFO && p.stream == 0)
            .ok_or_else(missing)?;
        let client = client_info(&info.payload).map_err(Handshake::Violation)?;
        session.info_read = true;
        session.client_credit = client.credit;
        match client.credentials {
            None => return Err(missing()),
            Some((user, pass)) if !authorized(cfg, &user, &pass) => {
                return Err(Handshake::Refused(
                    reason::AUTH_BAD_PASSWORD,
                    format!("Wisp authentication failed for user {user:?}"),
                ));
            }
            Some(_) => {}
        }
    }
    let credit = wire::encode_continue(0, BUFFER_PACKETS);
    sink.send(Message::binary(credit)).await.map_err(failed)?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{client_credit_extension, encode_info, password_extension, HEADER};

    fn info_payload(extensions: Vec<wire::Extension>) -> Vec<u8> {
        encode_info(&Info {
            major: 2,
            minor: 0,
            extensions,
        })[HEADER..]
            .to_vec()
    }

    #[test]
    fn reads_the_client_info() {
        let unknown = wire::Extension {
            id: 0x7f,
            body: vec![9],
        };
        let password = password_extension("alice", "pw").expect("short");
        let credit = client_credit_extension(8).expect("non-zero");
        let both = info_payload(vec![unknown, password, credit]);
        assert_eq!(
            client_info(&both),
            Ok(ClientInfo {
                credentials: Some(("alice".into(), "pw".into())),
                credit: Some(8),
            })
        );
        assert_eq!(
            client_info(&[2, 0]),
            Ok(ClientInfo {
                credentials: None,
                credit: None
            })
        );
        assert!(client_info(&both[..both.len() - 1]).is_err());
        assert!(client_info(&[]).is_err());
        let zero = info_payload(vec![wire::Extension {
            id: EXT_CLIENT_CREDIT,
            body: vec![0; 4],
        }]);
        assert!(client_info(&zero)
            .expect_err("a zero credit")
            .contains("credit of 0"));
    }

    #[test]
    fn checks_credentials() {
        let cfg = Config {
            wisp_auth: vec![("alice".into(), "pw".into()), ("bob".into(), "x".into())],
            ..Config::default()
        };
        assert!(authorized(&cfg, "alice", "pw"));
        assert!(authorized(&cfg, "bob", "x"));
        assert!(!authorized(&cfg, "alice", "x"));
        assert!(!authorized(&cfg, "alice", "pw2"));
        assert!(!authorized(&cfg, "", ""));
    }

    #[test]
    fn server_info_layout() {
        let Message::Binary(p) = server_info(true) else {
            panic!("binary")
        };
        assert_eq!(
            &p[..],
            &[
                INFO,
                0,
                0,
                0,
                0,
                2,
                0,
                EXT_PASSWORD,
                1,
                0,
                0,
                0,
                1,
                EXT_CLIENT_CREDIT,
                0,
                0,
                0,
                0
            ]
        );
        let Message::Binary(p) = server_info(false) else {
            panic!("binary")
        };
        assert_eq!(
            &p[..],
            &[INFO, 0, 0, 0, 0, 2, 0, EXT_CLIENT_CREDIT, 0, 0, 0, 0]
        );
    }
}
