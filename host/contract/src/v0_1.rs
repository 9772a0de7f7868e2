//! Contract `skillhost:skill@0.1.0` (`wit/skill@0.1.0/`): its generated bindings, converted to and
//! from the neutral types of [`crate::types`] and [`crate::manifest`].
//!
//! Every import is async (an HTTP call must not block the runtime, and the invocation's deadline
//! must be able to cancel it) and trappable (a guest that breaks a host rule is stopped rather
//! than answered). Generated types stay inside this module: [`add_to_linker`] serves the imports
//! through [`SkillImports`], and [`Pre`] returns neutral values from the exports.

use std::marker::PhantomData;

use wasmtime::Store;
use wasmtime::component::{HasData, InstancePre, Linker, Resource};

use crate::imports::SkillImports;
use crate::manifest::{OutputKind, ParamKind, ParamSpec, SkillInfo};
use crate::types;

crate::bindings::contract_bindings!("../../wit/skill@0.1.0", {});
