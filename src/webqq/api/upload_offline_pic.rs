//! `POST http://weboffline.ftn.qq.com/ftn_access/upload_offline_pic?time=<ms>`: a buddy picture.
//!
//! Protocol §2.18 "Buddy offline picture" and §6.4. Multipart form; the HTML answer embeds JSON
//! with `retcode`, `progress` (100 = complete), `filesize`, `filename`, `filepath` (empty =
//! failure). Sent as `["offpic", filepath, filename, filesize]`.

use serde::{Deserialize, Serialize};

use crate::webqq::Error;

/// Endpoint name for errors and metrics.
pub const NAME: &str = "upload_offline_pic";
/// The path on [`crate::webqq::hosts::OFFLINE_UPLOAD`].
pub const PATH: &str = "/ftn_access/upload_offline_pic";
/// The callback the page named.
pub const CALLBACK: &str = "parent.EQQ.Model.ChatMsg.callbackSendPic";

/// The text fields of the multipart form; the file goes in the part `file`.
pub fn form_fields(
    own_uin: u64,
    skey: &str,
    peer_uin: u64,
    vfwebqq: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("callback", CALLBACK.into()),
        ("locallangid", "2052".into()),
        ("clientversion", "1409".into()),
        ("uin", own_uin.to_string()),
        ("skey", skey.to_owned()),
        ("appid", "1002101".into()),
        ("peeruin", peer_uin.to_string()),
        ("fileid", "1".into()),
        ("vfwebqq", vfwebqq.to_owned()),
        ("senderviplevel", "0".into()),
        ("reciverviplevel", "0".into()),
    ]
}

/// The JSON embedded in the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflinePicUploaded {
    /// 0 on success.
    pub retcode: i64,
    /// 100 when complete.
    #[serde(default)]
    pub progress: i64,
    /// Bytes stored.
    #[serde(default)]
    pub filesize: u64,
    /// The stored name.
    #[serde(default)]
    pub filename: String,
    /// The path to send, e.g. `/27d736df-2a59-4007-8701-7218bc70898d`.
    #[serde(default)]
    pub filepath: String,
}

/// Formats the HTML answer the way the server did (the emulator's encoder).
pub fn format_answer(answer: &OfflinePicUploaded) -> String {
    let json = serde_json::to_string(answer).unwrap_or_default();
    format!(
        "<head><script type=\"text/javascript\">document.domain='qq.com';{CALLBACK}({json});</script></head><body></body>"
    )
}

/// Decodes the HTML answer.
pub fn decode_answer(body: &[u8]) -> Result<OfflinePicUploaded, Error> {
    let text = String::from_utf8_lossy(body);
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err(Error::decode(NAME, "no JSON in the answer", body));
    };
    let json = text.get(start..=end).unwrap_or_default();
    let answer: OfflinePicUploaded =
        serde_json::from_str(json).map_err(|e| Error::decode(NAME, e, body))?;
    if answer.retcode != 0 || answer.filepath.is_empty() {
        return Err(Error::Retcode {
            endpoint: NAME,
            retcode: crate::webqq::retcode::Retcode(if answer.retcode == 0 {
                -1
            } else {
                answer.retcode
            }),
            new_ptwebqq: None,
        });
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_round_trip() {
        let answer = OfflinePicUploaded {
            retcode: 0,
            progress: 100,
            filesize: 1234,
            filename: "a.png".into(),
            filepath: "/27d736df-2a59-4007-8701-7218bc70898d".into(),
        };
        assert_eq!(decode_answer(format_answer(&answer).as_bytes()).unwrap(), answer);
        let failed = OfflinePicUploaded { filepath: String::new(), ..answer };
        assert!(decode_answer(format_answer(&failed).as_bytes()).is_err());
    }
}
