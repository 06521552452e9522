//! ptlogin's JavaScript answers: `ptui_checkVC(...)`, `ptuiCB(...)`, `ptui_auth_CB(...)`
//! (protocol §1.2.1, §1.2.5, §1.3.3, §1.4), formatted exactly like the real ones.

use rand::Rng;

/// Escapes a value for a single-quoted JS string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The salt written as `\xNN` escapes, lowercase hex (protocol §1.2.1).
pub(crate) fn salt_escapes(salt: &[u8; 8]) -> String {
    salt.iter().map(|b| format!("\\x{b:02x}")).collect()
}

/// The 8-byte big-endian QQ number used as salt (protocol §1.2.1).
pub(crate) fn qq_salt(qq: u64) -> [u8; 8] {
    qq.to_be_bytes()
}

/// `ptui_checkVC('<flag>','<code>','<salt>');` (2013) or with `,'<vs>','<randsalt>'` (2015).
pub(crate) fn check_vc(
    need_captcha: bool,
    code: &str,
    salt: &[u8; 8],
    v2015: Option<&str>,
) -> String {
    let flag = if need_captcha { '1' } else { '0' };
    let salt = salt_escapes(salt);
    match v2015 {
        Some(vs) => {
            format!("ptui_checkVC('{flag}','{}','{salt}','{}','0');", quote(code), quote(vs))
        }
        None => format!("ptui_checkVC('{flag}','{}','{salt}');", quote(code)),
    }
}

/// `ptuiCB('<code>','<sub>','<url>','0','<message>', '<nick>');` — note the space before the
/// last argument, as in real answers (protocol §1.2.5).
pub(crate) fn cb(code: u32, sub: u32, url: &str, message: &str, nick: &str) -> String {
    format!(
        "ptuiCB('{code}','{sub}','{}','0','{}', '{}');",
        quote(url),
        quote(message),
        quote(nick)
    )
}

/// A random number in parentheses, as the real error texts carried (protocol §1.3.3).
fn tag() -> u32 {
    rand::rng().random_range(100_000_000..4_000_000_000)
}

/// The ptuiCB answer for a failure code, with the real message text (protocol §6.3).
pub(crate) fn failure(code: u32, qq: &str) -> String {
    let (sub, message) = match code {
        3 => (0, "您输入的帐号或密码不正确，请重新输入。".to_owned()),
        4 => (0, "您输入的验证码不正确，请重新输入。".to_owned()),
        7 => (0, format!("很遗憾，网络连接出现异常，请您稍后再试。({})", tag())),
        19 => (0, "您的号码暂时无法登录，请到 aq.qq.com 解除限制。".to_owned()),
        24 => (0, format!("很遗憾，网络连接出现异常，请您检查是否禁用cookies。({})", tag())),
        65 => (0, format!("二维码已失效。({})", tag())),
        66 => (0, format!("二维码未失效。({})", tag())),
        67 => (0, format!("二维码认证中。({})", tag())),
        71 => (0, "您的帐号由于异常禁止登录，请联系客服。(2009081021)".to_owned()),
        _ => (0, format!("登录失败，请稍后再试。({})", tag())),
    };
    cb(code, sub, "", &message, qq)
}

/// The success answer: field 3 is the check_sig URL, field 6 the nickname.
pub(crate) fn success(check_sig_url: &str, nick: &str) -> String {
    cb(0, 0, check_sig_url, "登录成功！", nick)
}

/// `ptui_auth_CB('<code>','<url>')` for pt4_auth (protocol §1.4).
pub(crate) fn auth_cb(code: u32, url: &str) -> String {
    format!("ptui_auth_CB('{code}','{}')", quote(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_check_vc_forms() {
        let salt = qq_salt(2_769_546_520);
        assert_eq!(salt_escapes(&salt), "\\x00\\x00\\x00\\x00\\xa5\\x13\\xed\\x18");
        assert_eq!(
            check_vc(true, "4GJS", &salt, None),
            "ptui_checkVC('1','4GJS','\\x00\\x00\\x00\\x00\\xa5\\x13\\xed\\x18');"
        );
        assert_eq!(
            check_vc(false, "!ZDP", &qq_salt(1), Some("34bf")),
            "ptui_checkVC('0','!ZDP','\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01','34bf','0');"
        );
    }

    #[test]
    fn test_ptui_cb_format() {
        assert_eq!(
            failure(3, "2769546520"),
            "ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '2769546520');"
        );
        assert_eq!(
            success("http://ptlogin4.web2.qq.com/check_sig?a=1", "呼吸 (糗百)"),
            "ptuiCB('0','0','http://ptlogin4.web2.qq.com/check_sig?a=1','0','登录成功！', '呼吸 (糗百)');"
        );
        assert!(failure(66, "0").contains("二维码未失效。("));
        assert_eq!(cb(4, 0, "", "x'y", "n"), "ptuiCB('4','0','','0','x\\'y', 'n');");
    }
}
