//! Appservice transactions: any `PUT /transactions/{txnId}` body through `parse_transaction`;
//! its events stay raw, and each must still be readable as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::matrix::appservice::parse_transaction;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(txn) = parse_transaction("txn".to_owned(), data) {
        for event in &txn.events {
            let _: Value = serde_json::from_str(event.json().get()).expect("raw event is JSON");
        }
        for event in &txn.ephemeral {
            let _: Value = serde_json::from_str(event.json().get()).expect("raw event is JSON");
        }
    }
});
