//! Control operations.
pub struct ControlError;
pub struct EmulatorState;
pub struct MessageKind;
pub struct PostMessage;
pub struct Posted;
pub struct SessionInfo;
