//! The homeserver's `hs_token` check (MATRIX.md §1): `Authorization: Bearer` first, the legacy
//! `access_token` query parameter as fallback, constant-time comparison, before any body is read.

use subtle::ConstantTimeEq as _;

use crate::matrix::Token;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No token at all: 401 `M_MISSING_TOKEN`.
    Missing,
    /// A wrong token, a non-Bearer `Authorization`, or header and query disagreeing: 403
    /// `M_FORBIDDEN`.
    Forbidden,
}

/// Checks the token of a request given its `Authorization` header value (if any) and its raw
/// query string. Never logs either.
pub(crate) fn check(
    authorization: Option<&[u8]>,
    query: &str,
    hs_token: &Token,
) -> Result<(), AuthFailure> {
    let header = match authorization {
        Some(value) => Some(bearer(value).ok_or(AuthFailure::Forbidden)?),
        None => None,
    };
    let from_query = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned());
    let presented: &[u8] = match (header, from_query.as_deref()) {
        (None, None) => return Err(AuthFailure::Missing),
        // Two different tokens in one request is either a confused proxy or probing: refuse.
        (Some(h), Some(q)) if !bool::from(h.ct_eq(q.as_bytes())) => {
            return Err(AuthFailure::Forbidden);
        }
        (Some(h), _) => h,
        (None, Some(q)) => q.as_bytes(),
    };
    if bool::from(presented.ct_eq(hs_token.expose().as_bytes())) {
        Ok(())
    } else {
        Err(AuthFailure::Forbidden)
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive, RFC 7235).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value.get(7..)?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_auth_matrix() {
        let token = Token::new("hs-secret");
        let cases: &[(Option<&str>, &str, Result<(), AuthFailure>)] = &[
            (Some("Bearer hs-secret"), "", Ok(())),
            (Some("bearer hs-secret"), "", Ok(())),
            (None, "access_token=hs-secret", Ok(())),
            (None, "a=1&access_token=hs%2Dsecret", Ok(())),
            (Some("Bearer hs-secret"), "access_token=hs-secret", Ok(())),
            (Some("Bearer hs-secret"), "access_token=other", Err(AuthFailure::Forbidden)),
            (Some("Bearer other"), "access_token=hs-secret", Err(AuthFailure::Forbidden)),
            (None, "", Err(AuthFailure::Missing)),
            (None, "user_id=%40a%3Ab", Err(AuthFailure::Missing)),
            (Some("Bearer wrong"), "", Err(AuthFailure::Forbidden)),
            (Some("Bearer hs-secre"), "", Err(AuthFailure::Forbidden)),
            (Some("Basic aHM6c2VjcmV0"), "", Err(AuthFailure::Forbidden)),
            (Some("Bearer "), "", Err(AuthFailure::Forbidden)),
            (None, "access_token=wrong", Err(AuthFailure::Forbidden)),
        ];
        for (header, query, expected) in cases {
            assert_eq!(
                check(header.map(str::as_bytes), query, &token),
                *expected,
                "{header:?} {query}"
            );
        }
    }
}
