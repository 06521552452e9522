//! `POST http://up.web2.qq.com/cgi-bin/cface_upload?time=<ms>`: upload a group custom face.
//!
//! Protocol §2.18 step 1–2 and §6.4. Multipart form; the answer is an HTML page whose script calls
//! the callback with `{'ret':0,'msg':'<NAME>.jPg'}`: ret 0 stored, 4 already stored (the name is
//! followed by an error tail, cut at the space), 2 too large.

use crate::webqq::Error;

/// Endpoint name for errors and metrics.
pub const NAME: &str = "cface_upload";
/// The path on [`crate::webqq::hosts::UPLOAD`].
pub const PATH: &str = "/cgi-bin/cface_upload";
/// The callback the group chat page named.
pub const CALLBACK_GROUP: &str = "EQQ.Model.ChatMsg.callbackSendPicGroup";
/// The largest picture the client uploads (group uploads could exceed 250 KB, lwqq).
pub const MAX_UPLOAD_BYTES: usize = 1024 * 1024;

/// The text fields of the multipart form; the file goes in the part `custom_face`.
pub fn form_fields(vfwebqq: &str, fileid: u32) -> Vec<(&'static str, String)> {
    vec![
        ("from", "control".into()),
        ("f", CALLBACK_GROUP.into()),
        ("vfwebqq", vfwebqq.to_owned()),
        ("fileid", fileid.to_string()),
    ]
}

/// The answer: `ret` and the stored file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfaceUploaded {
    /// 0 stored, 4 already present.
    pub ret: i64,
    /// The server's file name, e.g. `5F7E31F0001EF4310865F1FF4549B12B.jPg`.
    pub name: String,
}

/// Formats the HTML answer the way the server did (the emulator's encoder).
pub fn format_answer(callback: &str, ret: i64, msg: &str) -> String {
    let msg = msg.replace(['\'', '\\', '<', '>'], "");
    format!(
        "<head><script type=\"text/javascript\">document.domain='qq.com';parent.{callback}({{'ret':{ret},'msg':'{msg}'}});</script></head><body></body>"
    )
}

/// Decodes the HTML answer.
pub fn decode_answer(body: &[u8]) -> Result<CfaceUploaded, Error> {
    let text = String::from_utf8_lossy(body);
    let ret_start = text.find("'ret':").ok_or_else(|| Error::decode(NAME, "no 'ret'", body))? + 6;
    let ret_text: String = text
        .get(ret_start..)
        .unwrap_or_default()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    let ret: i64 =
        ret_text.parse().map_err(|_| Error::decode(NAME, "'ret' is not a number", body))?;
    let msg_start = text.find("'msg':'").ok_or_else(|| Error::decode(NAME, "no 'msg'", body))? + 7;
    let msg: String =
        text.get(msg_start..).unwrap_or_default().chars().take_while(|c| *c != '\'').collect();
    match ret {
        0 | 4 => {
            // ret 4: "already stored", the name followed by an error tail such as
            // " -6102 upload cface failed" (protocol §2.18).
            let name = msg.split(' ').next().unwrap_or_default().to_owned();
            if name.is_empty() {
                return Err(Error::decode(NAME, "empty file name", body));
            }
            Ok(CfaceUploaded { ret, name })
        }
        other => Err(Error::Retcode {
            endpoint: NAME,
            retcode: crate::webqq::retcode::Retcode(other),
            new_ptwebqq: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_answers() {
        let ok = format_answer(CALLBACK_GROUP, 0, "5F7E31F0001EF4310865F1FF4549B12B.jPg");
        assert_eq!(
            decode_answer(ok.as_bytes()).unwrap().name,
            "5F7E31F0001EF4310865F1FF4549B12B.jPg"
        );
        let again = format_answer(CALLBACK_GROUP, 4, "ABC.jPg -6102 upload cface failed");
        assert_eq!(
            decode_answer(again.as_bytes()).unwrap(),
            CfaceUploaded { ret: 4, name: "ABC.jPg".into() }
        );
        assert!(decode_answer(format_answer(CALLBACK_GROUP, 2, "too large").as_bytes()).is_err());
        assert!(decode_answer(b"<html>nginx</html>").is_err());
    }
}
