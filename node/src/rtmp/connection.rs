//! One RTMP connection: the handshake, the chunk stream, the NetConnection/NetStream commands
//! a publisher sends (`connect`, `createStream`, `publish`, `FCUnpublish`/`deleteStream`), and
//! its FLV audio and video fed to a [`Segmenter`], whose segments go to a [`Pusher`].
//!
//! Owns the socket, the chunk reader's state (bounded by scuffle-rtmp, see the module above),
//! the segment being built and the stream's admission. Every wait is bounded: the handshake and
//! the publish request by [`PUBLISH_DEADLINE`] from the accept, each read and write afterwards
//! by [`IDLE_TIMEOUT`]. The connection ends when the publisher leaves (closes, `FCUnpublish`,
//! `deleteStream`), goes silent, breaks the protocol, sends a codec we do not take, or the node
//! stops; its last partial segment is then pushed (unless the stream was refused for its
//! media) and the stream ends after it.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix_web::rt::net::TcpStream;
use bytes::BytesMut;
use lp_pipelines::{Segmenter, SegmenterError};
use scuffle_rtmp::chunk::reader::ChunkReader;
use scuffle_rtmp::chunk::writer::ChunkWriter;
use scuffle_rtmp::chunk::{CHUNK_SIZE, Chunk, MAX_CHUNK_SIZE};
use scuffle_rtmp::command_messages::netconnection::{NetConnectionCommand, NetConnectionCommandConnectResult};
use scuffle_rtmp::command_messages::netstream::NetStreamCommand;
use scuffle_rtmp::command_messages::on_status::{OnStatus, OnStatusCode};
use scuffle_rtmp::command_messages::{Command, CommandResultLevel, CommandType};
use scuffle_rtmp::handshake::{HandshakeServer, RTMP_HANDSHAKE_SIZE};
use scuffle_rtmp::messages::MessageType;
use scuffle_rtmp::protocol_control_messages::{
    ProtocolControlMessageAcknowledgement, ProtocolControlMessageSetChunkSize, ProtocolControlMessageSetPeerBandwidth,
    ProtocolControlMessageSetPeerBandwidthLimitType, ProtocolControlMessageWindowAcknowledgementSize,
};
use scuffle_rtmp::user_control_messages::EventMessageStreamBegin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tracing::{info, warn};

use super::pusher::Pusher;
use super::{Shared, amf0, flv};
use crate::ingest::IngestError;

/// From the accept to the answer to `publish`: handshake, `connect`, `createStream`,
/// `publish` and the stream's admission (OBS and ffmpeg need well under a second).
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(10);
/// The longest a publisher may send nothing, or take to read our answers.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest AMF0 command accepted (`connect` is a few hundred bytes).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// The window we ask the publisher to acknowledge, and the bandwidth we announce.
const WINDOW: u32 = 2_500_000;
/// Bytes read at a time.
const READ_SIZE: usize = 16 * 1024;
/// The only message stream a publisher gets (`createStream`'s answer).
const STREAM_ID: u32 = 1;

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The publisher closed the connection.
    Closed,
    /// Nothing from the publisher for too long, in the phase named.
    Timeout(&'static str),
    /// The connection broke (reset, write failure).
    Io(String),
    /// Not RTMP, or RTMP we do not take (bad chunks, bad commands, bad FLV tags).
    Protocol(String),
    /// Audio or video in a codec we do not take.
    Unsupported(String),
    /// The publisher's media cannot be segmented (no keyframes, too large, bad codec config).
    Media(SegmenterError),
    /// The connect or publish request was refused (already answered and logged).
    Refused,
    /// The node is stopping.
    Shutdown,
}

/// A stream this connection publishes.
struct Publishing {
    key: String,
    segmenter: Segmenter,
    pusher: Pusher,
    video_ts: Unwrap,
    audio_ts: Unwrap,
}

/// RTMP timestamps are 32-bit milliseconds: they wrap after 49.7 days.
#[derive(Default)]
struct Unwrap {
    last: Option<u32>,
    epoch: i64,
}

impl Unwrap {
    fn extend(&mut self, ts: u32) -> i64 {
        if let Some(last) = self.last
            && ts < last
            && last - ts > u32::MAX / 2
        {
            self.epoch += 1 << 32;
        }
        self.last = Some(ts);
        self.epoch + i64::from(ts)
    }
}

struct Connection {
    io: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    shared: std::rc::Rc<Shared>,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    reader: ChunkReader,
    writer: ChunkWriter,
    /// The publisher's acknowledgement window (0: it wants none).
    ack_window: u32,
    /// Bytes received (mod 2^32, as RTMP counts them) and at the last acknowledgement.
    received: u32,
    acked: u32,
    deadline: Instant,
    phase: &'static str,
    connected: bool,
    publishing: Option<Publishing>,
    /// The key published on this connection, for the log.
    stream_key: Option<String>,
}

/// Serve one accepted connection until it ends (or `stop` fires); the caller's permit is held
/// until then.
pub(crate) async fn serve(
    io: TcpStream,
    peer: SocketAddr,
    shared: std::rc::Rc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let local = io.local_addr().unwrap_or(shared.addr);
    let _ = io.set_nodelay(true);
    let mut conn = Connection {
        io,
        peer,
        local,
        shared,
        read_buf: BytesMut::with_capacity(READ_SIZE),
        write_buf: Vec::new(),
        reader: ChunkReader::default(),
        writer: ChunkWriter::default(),
        ack_window: WINDOW,
        received: 0,
        acked: 0,
        deadline: Instant::now() + PUBLISH_DEADLINE,
        phase: "handshake",
        connected: false,
        publishing: None,
        stream_key: None,
    };
    let end = tokio::select! {
        end = conn.run() => end,
        Ok(_) = stop.wait_for(|stopping| *stopping) => End::Shutdown,
    };
    let Connection { peer, publishing, io, stream_key, .. } = conn;
    drop(io);
    let key = stream_key.as_deref().unwrap_or("");
    match &end {
        End::Closed if stream_key.is_some() => info!(target: "lp::rtmp", %peer, stream_key = %key, "publisher left"),
        End::Closed => info!(target: "lp::rtmp", %peer, "RTMP connection closed before publishing"),
        End::Shutdown => info!(target: "lp::rtmp", %peer, stream_key = %key, "connection closed: the node is stopping"),
        End::Refused => {}
        End::Timeout(phase) => {
            let limit = if *phase == "publishing" { IDLE_TIMEOUT } else { PUBLISH_DEADLINE };
            warn!(target: "lp::rtmp", %peer, stream_key = %key, phase, limit_s = limit.as_secs(), "RTMP connection timed out; closed")
        }
        End::Io(e) => warn!(target: "lp::rtmp", %peer, stream_key = %key, error = %e, "RTMP connection broke"),
        End::Protocol(e) => {
            warn!(target: "lp::rtmp", %peer, stream_key = %key, error = %e, "RTMP protocol error; connection closed")
        }
        End::Unsupported(codec) => {
            warn!(target: "lp::rtmp", %peer, stream_key = %key, %codec, "unsupported codec: the gateway takes H.264 video and AAC audio; connection closed")
        }
        End::Media(e) => {
            warn!(target: "lp::rtmp", %peer, stream_key = %key, error = %e, "cannot segment the stream; connection closed")
        }
    }
    if let Some(p) = publishing {
        // Media the segmenter refused would be refused again; anything else keeps its last part.
        p.finish(!matches!(end, End::Media(_) | End::Unsupported(_))).await;
    }
}

impl Publishing {
    /// The stream is over: its last segment (when `keep_last`) is pushed, then it ends.
    async fn finish(self, keep_last: bool) {
        let last = if keep_last { self.segmenter.finish() } else { None };
        self.pusher.finish(last).await;
    }
}

impl Connection {
    async fn run(&mut self) -> End {
        if let Err(end) = self.handshake().await {
            return end;
        }
        self.phase = "connect";
        loop {
            // Every whole message already received, then the answers, then more bytes.
            loop {
                let next = std::panic::catch_unwind(AssertUnwindSafe(|| self.reader.read_chunk(&mut self.read_buf)));
                let chunk = match next {
                    Ok(Ok(Some(chunk))) => chunk,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => return End::Protocol(format!("bad chunk stream: {e}")),
                    // The chunk reader's arithmetic on hostile headers (debug builds check it).
                    Err(_) => return End::Protocol("bad chunk stream: inconsistent chunk headers".into()),
                };
                if let Err(end) = self.message(chunk).await {
                    let _ = self.flush().await;
                    return end;
                }
            }
            // A chunk is at most MAX_CHUNK_SIZE: what is left over is less than one.
            if self.read_buf.len() > 2 * MAX_CHUNK_SIZE + READ_SIZE {
                return End::Protocol("a chunk larger than the chunk size".into());
            }
            self.acknowledge();
            if let Err(end) = self.flush().await {
                return end;
            }
            if let Err(end) = self.read_more().await {
                return end;
            }
        }
    }

    /// C0 (version 3), C1 → S0 S1 S2, C2; what follows C2 stays in `read_buf`.
    async fn handshake(&mut self) -> Result<(), End> {
        self.read_at_least(1).await?;
        if self.read_buf[0] != 3 {
            let hint = if self.read_buf[0].is_ascii_alphabetic() { " (plain text: an HTTP request?)" } else { "" };
            return Err(End::Protocol(format!(
                "not an RTMP client: the first byte is 0x{:02x}, not version 3{hint}",
                self.read_buf[0]
            )));
        }
        let mut server = HandshakeServer::default();
        for size in [1 + RTMP_HANDSHAKE_SIZE, RTMP_HANDSHAKE_SIZE] {
            self.read_at_least(size).await?;
            let part = self.read_buf.split_to(size).freeze();
            let out = &mut self.write_buf;
            match std::panic::catch_unwind(AssertUnwindSafe(|| server.handshake(&mut std::io::Cursor::new(part), out)))
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(End::Protocol(format!("bad handshake: {e}"))),
                Err(_) => return Err(End::Protocol("bad handshake".into())),
            }
            self.flush().await?;
        }
        if !server.is_finished() {
            return Err(End::Protocol("bad handshake".into()));
        }
        Ok(())
    }

    async fn read_at_least(&mut self, n: usize) -> Result<(), End> {
        while self.read_buf.len() < n {
            self.read_more().await?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> Result<(), End> {
        if self.publishing.is_some() {
            self.deadline = Instant::now() + IDLE_TIMEOUT;
        }
        self.read_buf.reserve(READ_SIZE);
        match tokio::time::timeout_at(self.deadline, self.io.read_buf(&mut self.read_buf)).await {
            Err(_) => Err(End::Timeout(self.phase)),
            Ok(Ok(0)) => Err(End::Closed),
            Ok(Ok(n)) => {
                self.received = self.received.wrapping_add(n as u32);
                Ok(())
            }
            Ok(Err(e)) => Err(End::Io(e.to_string())),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let deadline = self.deadline.min(Instant::now() + IDLE_TIMEOUT);
        match tokio::time::timeout_at(deadline, self.io.write_all(&self.write_buf)).await {
            Ok(Ok(())) => {
                self.write_buf.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(End::Io(e.to_string())),
            Err(_) => Err(End::Timeout(self.phase)),
        }
    }

    /// An acknowledgement each time the publisher's window of bytes has been received.
    fn acknowledge(&mut self) {
        if self.ack_window > 0 && self.received.wrapping_sub(self.acked) >= self.ack_window {
            self.acked = self.received;
            let ack = ProtocolControlMessageAcknowledgement { sequence_number: self.received };
            if let Err(e) = ack.write(&mut self.write_buf, &self.writer) {
                warn!(target: "lp::rtmp", peer = %self.peer, error = %e, "cannot write an acknowledgement");
            }
        }
    }

    async fn message(&mut self, chunk: Chunk) -> Result<(), End> {
        let timestamp = chunk.message_header.timestamp;
        let payload = chunk.payload;
        match chunk.message_header.msg_type_id {
            MessageType::SetChunkSize => {
                let size = ProtocolControlMessageSetChunkSize::read(&payload)
                    .map_err(|e| End::Protocol(format!("bad SetChunkSize: {e}")))?
                    .chunk_size as usize;
                if !self.reader.update_max_chunk_size(size) {
                    return Err(End::Protocol(format!("chunk size {size} is outside 128..={MAX_CHUNK_SIZE}")));
                }
            }
            MessageType::WindowAcknowledgementSize => {
                self.ack_window = ProtocolControlMessageWindowAcknowledgementSize::read(&payload)
                    .map_err(|e| End::Protocol(format!("bad WindowAcknowledgementSize: {e}")))?
                    .acknowledgement_window_size;
            }
            MessageType::CommandAMF0 => {
                if payload.len() > MAX_COMMAND_BYTES {
                    return Err(End::Protocol(format!(
                        "a {} byte command (at most {MAX_COMMAND_BYTES})",
                        payload.len()
                    )));
                }
                amf0::check(&payload).map_err(|e| End::Protocol(e.to_string()))?;
                let command = match std::panic::catch_unwind(AssertUnwindSafe(|| Command::read(payload))) {
                    Ok(Ok(command)) => command,
                    Ok(Err(e)) => return Err(End::Protocol(format!("bad command: {e}"))),
                    Err(_) => return Err(End::Protocol("bad command".into())),
                };
                self.command(command).await?;
            }
            MessageType::Video => {
                if let Some(p) = &mut self.publishing {
                    let dts = p.video_ts.extend(timestamp);
                    match flv::video(&payload).map_err(|e| End::Protocol(e.to_string()))? {
                        flv::Video::AvcConfig(avcc) => p.segmenter.video_config(&avcc).map_err(End::Media)?,
                        flv::Video::AvcFrame { keyframe, cts, data } => {
                            if let Some(segment) = p.segmenter.video(dts, cts, keyframe, &data).map_err(End::Media)? {
                                p.pusher.push(segment);
                            }
                        }
                        flv::Video::Ignored => {}
                        flv::Video::Unsupported(codec) => return Err(End::Unsupported(format!("video: {codec}"))),
                    }
                }
            }
            MessageType::Audio => {
                if let Some(p) = &mut self.publishing {
                    let dts = p.audio_ts.extend(timestamp);
                    match flv::audio(&payload).map_err(|e| End::Protocol(e.to_string()))? {
                        flv::Audio::AacConfig(asc) => p.segmenter.audio_config(&asc).map_err(End::Media)?,
                        flv::Audio::AacFrame(data) => p.segmenter.audio(dts, &data).map_err(End::Media)?,
                        flv::Audio::Ignored => {}
                        flv::Audio::Unsupported(codec) => return Err(End::Unsupported(format!("audio: {codec}"))),
                    }
                }
            }
            // Metadata (@setDataFrame), acknowledgements, user control, aborts: nothing to do.
            _ => {}
        }
        Ok(())
    }

    async fn command(&mut self, command: Command<'_>) -> Result<(), End> {
        let tx = command.transaction_id;
        match command.command_type {
            CommandType::NetConnection(NetConnectionCommand::Connect(connect)) => {
                let app = connect.app.as_str().trim_end_matches('/');
                if app != "live" {
                    let why = format!("no application {app:?}: publish to rtmp://HOST:PORT/live/STREAM_KEY");
                    warn!(target: "lp::rtmp", peer = %self.peer, app, "connect refused: unknown application");
                    self.status(tx, CommandResultLevel::Error, OnStatusCode::NET_CONNECTION_CONNECT_REJECTED, why)?;
                    return Err(End::Refused);
                }
                self.connected = true;
                self.phase = "publish";
                let w = &self.writer;
                let buf = &mut self.write_buf;
                ProtocolControlMessageWindowAcknowledgementSize { acknowledgement_window_size: WINDOW }
                    .write(buf, w)
                    .map_err(write_error)?;
                ProtocolControlMessageSetPeerBandwidth {
                    acknowledgement_window_size: WINDOW,
                    limit_type: ProtocolControlMessageSetPeerBandwidthLimitType::Dynamic,
                }
                .write(buf, w)
                .map_err(write_error)?;
                ProtocolControlMessageSetChunkSize { chunk_size: CHUNK_SIZE as u32 }
                    .write(buf, w)
                    .map_err(write_error)?;
                self.writer.set_chunk_size(CHUNK_SIZE);
                let result = NetConnectionCommand::ConnectResult(NetConnectionCommandConnectResult::default());
                Command { transaction_id: tx, command_type: CommandType::NetConnection(result) }
                    .write(&mut self.write_buf, &self.writer)
                    .map_err(write_error)?;
            }
            CommandType::NetConnection(NetConnectionCommand::CreateStream) => {
                let result = NetConnectionCommand::CreateStreamResult { stream_id: f64::from(STREAM_ID) };
                Command { transaction_id: tx, command_type: CommandType::NetConnection(result) }
                    .write(&mut self.write_buf, &self.writer)
                    .map_err(write_error)?;
            }
            CommandType::NetStream(NetStreamCommand::Publish { publishing_name, .. }) => {
                self.publish(tx, publishing_name.as_str()).await?;
            }
            // The stream ends; the connection stays until the publisher closes it (ffmpeg and
            // OBS send FCUnpublish and deleteStream, then close).
            CommandType::NetStream(NetStreamCommand::DeleteStream { .. } | NetStreamCommand::CloseStream) => {
                self.unpublish().await;
            }
            CommandType::Unknown(unknown) if unknown.command_name.as_str() == "FCUnpublish" => {
                self.unpublish().await;
            }
            CommandType::NetStream(NetStreamCommand::Play { .. } | NetStreamCommand::Play2 { .. }) => {
                return Err(End::Protocol(
                    "play is not supported: watch the stream's HLS at /stream/{key}.m3u8".into(),
                ));
            }
            // releaseStream, FCPublish, _checkbw and the like need no answer.
            _ => {}
        }
        Ok(())
    }

    async fn unpublish(&mut self) {
        if let Some(p) = self.publishing.take() {
            info!(target: "lp::rtmp", peer = %self.peer, stream_key = %p.key, "publisher unpublished");
            p.finish(true).await;
            self.phase = "unpublished";
            self.deadline = Instant::now() + IDLE_TIMEOUT;
        }
    }

    async fn publish(&mut self, tx: f64, key: &str) -> Result<(), End> {
        if !self.connected {
            return Err(End::Protocol("publish before connect".into()));
        }
        if self.publishing.is_some() {
            return Err(End::Protocol("a second publish on one connection".into()));
        }
        let bad_name = OnStatusCode("NetStream.Publish.BadName");
        if !crate::http::gateway::valid_name(key) {
            warn!(target: "lp::rtmp", peer = %self.peer, stream_key = ?key.chars().take(140).collect::<String>(), "publish refused: not a valid stream key");
            let why = "stream keys are 1-128 characters of A-Z a-z 0-9 _ -".to_string();
            self.status(tx, CommandResultLevel::Error, bad_name, why)?;
            return Err(End::Refused);
        }
        let url = format!("rtmp://{}/live/{key}", self.local);
        let ingest = self.shared.ingest.clone();
        let admitted = tokio::time::timeout_at(self.deadline, ingest.publish(key, &url)).await;
        let admitted = admitted.map_err(|_| End::Timeout("publish"))?;
        match admitted {
            Ok(admission) => {
                self.deadline = Instant::now() + IDLE_TIMEOUT;
                self.stream_key = Some(key.to_string());
                info!(target: "lp::rtmp", peer = %self.peer, stream_key = %key, stream = %admission.id, "publishing");
                EventMessageStreamBegin { stream_id: STREAM_ID }
                    .write(&self.writer, &mut self.write_buf)
                    .map_err(|e| End::Io(e.to_string()))?;
                let why = format!("publishing {key}");
                self.status(tx, CommandResultLevel::Status, OnStatusCode::NET_STREAM_PUBLISH_START, why)?;
                self.phase = "publishing";
                self.publishing = Some(Publishing {
                    key: key.to_string(),
                    segmenter: Segmenter::new(self.shared.segmenter),
                    pusher: Pusher::start(ingest, admission),
                    video_ts: Unwrap::default(),
                    audio_ts: Unwrap::default(),
                });
                Ok(())
            }
            Err(e) => {
                warn!(target: "lp::rtmp", peer = %self.peer, stream_key = %key, reason = %e, "publish refused");
                let code = match e {
                    IngestError::Busy(_) => bad_name,
                    IngestError::Denied(_) => OnStatusCode("NetStream.Publish.Rejected"),
                    _ => OnStatusCode("NetStream.Publish.Failed"),
                };
                self.status(tx, CommandResultLevel::Error, code, e.to_string())?;
                Err(End::Refused)
            }
        }
    }

    fn status(&mut self, tx: f64, level: CommandResultLevel, code: OnStatusCode, why: String) -> Result<(), End> {
        let status = OnStatus { code, level, description: Some(why.into()), others: None };
        Command { transaction_id: tx, command_type: CommandType::OnStatus(status) }
            .write(&mut self.write_buf, &self.writer)
            .map_err(write_error)
    }
}

fn write_error(e: scuffle_rtmp::error::RtmpError) -> End {
    End::Io(format!("cannot encode an answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_run_on_past_the_32_bit_wrap() {
        let mut u = Unwrap::default();
        assert_eq!(u.extend(10), 10);
        assert_eq!(u.extend(u32::MAX - 5), i64::from(u32::MAX) - 5);
        assert_eq!(u.extend(3), (1 << 32) + 3);
        // A small step back (reordering) is not a wrap.
        assert_eq!(u.extend(1), (1 << 32) + 1);
    }
}
