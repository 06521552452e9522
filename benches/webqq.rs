//! Benchmarks of the protocol hot paths: poll2 decoding and content encode/decode.
//!
//! Run with `cargo bench --bench webqq`. Each figure is the median of several runs, printed next to
//! a reference measured in the same run (parsing the same bytes into an untyped
//! `serde_json::Value`), so the ratio says what the typed model costs on this machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use qqbridge::webqq::api::Endpoint;
use qqbridge::webqq::api::RawAnswer;
use qqbridge::webqq::api::poll2::{Poll2, PollAnswer};
use qqbridge::webqq::content::Content;

const RUNS: usize = 15;

/// A realistic poll2 answer: `n` events mixing buddy, group and discussion messages with faces,
/// pictures and CJK text, in the 2013 (fat) form.
fn batch(n: usize) -> String {
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let font = serde_json::json!(["font", {"color":"004faa","name":"STKaiti","size":13,"style":[0,0,0]}]);
        let content =
            serde_json::json!([font, format!("消息 {i}: hello world, 你好 "), ["face", 14], "end"]);
        let event = match i % 3 {
            0 => {
                serde_json::json!({"poll_type":"message","value":{"msg_id":24225+i,"from_uin":2440652742u64,
                "to_uin":2769546520u64,"msg_id2":950054+i,"msg_type":9,"reply_ip":176498455,"time":1388368696,
                "content":content}})
            }
            1 => {
                serde_json::json!({"poll_type":"group_message","value":{"msg_id":13663+i,"from_uin":2559225925u64,
                "to_uin":2769546520u64,"msg_id2":886022+i,"msg_type":43,"reply_ip":176756826,"group_code":3483368056u64,
                "send_uin":2440652742u64,"seq":27+i,"time":1388368698,"info_seq":346167134,"content":content}})
            }
            _ => {
                serde_json::json!({"poll_type":"discu_message","value":{"msg_id":18803+i,"from_uin":10000,
                "to_uin":2769546520u64,"msg_id2":175418+i,"msg_type":42,"reply_ip":176488598,"did":2006892653u64,
                "send_uin":1657605740u64,"seq":8,"time":1395249174,"info_seq":2,"content":content}})
            }
        };
        events.push(event);
    }
    serde_json::json!({"retcode":0,"result":events}).to_string()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Duration {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        samples.push(start.elapsed() / iterations as u32);
    }
    median(samples)
}

fn main() {
    let events = 200;
    let body = batch(events);
    let raw = RawAnswer { status: 200, location: None, content_type: None, body: body.as_bytes() };
    let typed = measure(50, || {
        let answer = Poll2::decode(black_box(&raw));
        assert!(matches!(answer, Ok(PollAnswer::Events(ref e)) if e.len() == events));
    });
    let untyped = measure(50, || {
        let value: serde_json::Value =
            serde_json::from_slice(black_box(body.as_bytes())).unwrap_or_default();
        black_box(value);
    });
    let secs = typed.as_secs_f64();
    println!(
        "poll2 decode: {events} events, {} bytes: median {:.1} µs per batch = {:.0} events/s, {:.1} MB/s",
        body.len(),
        secs * 1e6,
        events as f64 / secs,
        body.len() as f64 / secs / 1e6
    );
    println!(
        "  reference serde_json::Value parse of the same bytes: {:.1} µs; typed/untyped ratio {:.2}",
        untyped.as_secs_f64() * 1e6,
        secs / untyped.as_secs_f64()
    );

    let value: serde_json::Value = serde_json::json!([
        ["font", {"color":"000000","name":"微软雅黑","size":10,"style":[0,0,0]}],
        "这是一条比较长的消息 with \"quotes\", back\\slashes and\nnewlines ",
        ["face", 14], " and a picture ",
        ["cface", {"name":"{94E8E5BA-2C6E-4B1D-A7B2-55C2F8C2E4D1}.jpg","file_id":445318646,"key":"PN576E5TyB53muY9","server":"124.115.11.111:8000"}],
        "done"
    ]);
    let decode = measure(20_000, || {
        black_box(Content::from_received(black_box(&value)).ok());
    });
    let content = Content::from_received(&value).unwrap_or_else(|_| Content::text(""));
    let encode = measure(20_000, || {
        black_box(content.encode_for_send());
    });
    let sent = content.encode_for_send();
    let decode_sent = measure(20_000, || {
        black_box(Content::decode_sent(black_box(&sent)).ok());
    });
    let reference = measure(20_000, || {
        black_box(serde_json::to_string(black_box(&value)).ok());
    });
    println!(
        "content: decode received {:.2} µs, encode for send {:.2} µs, decode sent {:.2} µs; \
         reference serde_json::to_string of the same array {:.2} µs (encode ratio {:.2})",
        decode.as_secs_f64() * 1e6,
        encode.as_secs_f64() * 1e6,
        decode_sent.as_secs_f64() * 1e6,
        reference.as_secs_f64() * 1e6,
        encode.as_secs_f64() / reference.as_secs_f64()
    );
}
