//! The core, owning both interfaces: portals, ghosts, message flow; convert/ is pure conversion.

pub mod convert;
