//! The WebQQ emulator (in progress).
