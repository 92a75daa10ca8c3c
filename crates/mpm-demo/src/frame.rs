//! WebSocket frames as the service sends them (RFC 6455 §5.2): final, unmasked, encoded once
//! and shared by every client they go to.

use axum::body::Bytes;

/// The close code for a policy violation (a malformed message, a client too slow).
pub(crate) const POLICY: u16 = 1008;
/// The close code for a message of a kind the service does not accept (binary).
pub(crate) const UNSUPPORTED: u16 = 1003;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;

/// A text frame carrying `text`.
pub(crate) fn text(text: &str) -> Bytes {
    encode(TEXT, &[text.as_bytes()])
}

/// A close frame with `code` and `reason` (cut to fit a control frame's 125 bytes, on a
/// character boundary).
pub(crate) fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode(CLOSE, &[&code.to_be_bytes(), &reason.as_bytes()[..end]])
}

fn encode(opcode: u8, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};

    /// What the WebSocket library itself encodes for the same frame.
    fn reference(frame: Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    #[test]
    fn text_frames_match_the_library_at_every_length_class() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let expected = reference(Frame::message(
                text.clone().into_bytes(),
                OpCode::Data(Data::Text),
                true,
            ));
            assert_eq!(super::text(&text).to_vec(), expected, "length {len}");
        }
    }

    #[test]
    fn close_frames_match_the_library_and_stay_short() {
        let expected = reference(Frame::close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "too slow".into(),
        })));
        assert_eq!(close(POLICY, "too slow").to_vec(), expected);
        let long = close(UNSUPPORTED, &"é".repeat(100));
        // 123 bytes would cut a character: 122 of reason, 2 of code.
        assert_eq!(
            long[1] as usize, 124,
            "a control frame carries at most 125 bytes"
        );
        assert_eq!(long.len(), 2 + 124);
    }
}
