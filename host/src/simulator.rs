//! placeholder
use crate::error::Failure;
/// args
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}
/// serve
pub async fn serve(_args: SimulateArgs) -> Result<(), Failure> {
    Err(Failure::other("todo"))
}
