//! placeholder
use crate::error::Failure;
/// run
pub async fn run(_g: &crate::cli::GlobalArgs, _a: crate::cli::DemoArgs) -> Result<(), Failure> {
    Err(Failure::other("todo"))
}
