//! placeholder
use crate::error::Failure;
/// test
pub async fn connections_test(_g: &crate::cli::GlobalArgs, _name: &str) -> Result<(), Failure> {
    Err(Failure::other("todo"))
}
