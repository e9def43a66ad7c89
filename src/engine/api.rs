//! Registration of script functions together with their reference documentation.
//!
//! Every function, method and property a domain module registers goes through [`Api`], which
//! records a [`FnDoc`] (signature, text, example) beside the Rhai registration. `ctrsh doc`
//! prints these, and a test checks that every registered name has one with an example.

use std::borrow::Cow;

use rhai::{Engine, FuncRegistration, RhaiNativeFunc, Variant};

/// The reference entry of one script function, method or property. Borrowed from the
/// binary's own text (built at every start-up for ~400 functions: copies would cost
/// ~1200 allocations and the whole reference text in heap).
#[derive(Debug, Clone)]
pub struct FnDoc {
    /// The name scripts call ("veth", or "set_up" for the method `Link.set_up`).
    pub name: &'static str,
    /// How it is called, e.g. `veth(name_a: string, name_b: string, opts: map) -> array`.
    pub signature: Cow<'static, str>,
    /// The domain it belongs to ("core", "ns", "net" ...), for grouping.
    pub domain: &'static str,
    /// What it does; must contain an `Example:` section.
    pub text: &'static str,
}

impl FnDoc {
    /// The example part of the text, if it has one.
    #[cfg(test)]
    pub fn example(&self) -> Option<&str> {
        self.text
            .split_once("Example:")
            .map(|(_, ex)| ex.trim_matches('\n'))
    }
}

/// Registers functions of one domain into the engine, keeping their docs.
pub struct Api<'a> {
    pub engine: &'a mut Engine,
    docs: &'a mut Vec<FnDoc>,
    domain: &'static str,
}

impl<'a> Api<'a> {
    pub fn new(engine: &'a mut Engine, docs: &'a mut Vec<FnDoc>, domain: &'static str) -> Self {
        Api {
            engine,
            docs,
            domain,
        }
    }

    /// Register a global function (or a method, when its first parameter is `&mut T`).
    ///
    /// `signature` is what `ctrsh doc` shows; `text` says what it does and ends with an
    /// `Example:` section.
    pub fn func<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
        &mut self,
        name: &'static str,
        signature: &'static str,
        text: &'static str,
        func: FUNC,
    ) -> &mut Self
    where
        R: Variant + Clone,
        FUNC: RhaiNativeFunc<A, N, X, R, F> + 'static,
    {
        // The reference lives in `docs` (rhai's own metadata comments would cost an
        // allocation per line at every start-up and nothing reads them).
        FuncRegistration::new(name).register_into_engine(self.engine, func);
        self.doc(name, signature, text);
        self
    }

    /// Register a read-only property `ty.name` (a getter).
    pub fn getter<T: Variant + Clone, R: Variant + Clone>(
        &mut self,
        ty: &str,
        name: &'static str,
        text: &'static str,
        get: impl Fn(&mut T) -> R + 'static,
    ) -> &mut Self {
        self.engine.register_get(name, move |t: &mut T| get(t));
        let ret = short_type_name::<R>();
        self.push(name, format!("{ty}.{name} -> {ret}").into(), text);
        self
    }

    /// Register a custom type with its script-visible name.
    pub fn ty<T: Variant + Clone>(&mut self, name: &str) -> &mut Self {
        self.engine.register_type_with_name::<T>(name);
        self
    }

    /// Add a reference entry without registering anything (for names the engine handles
    /// itself, e.g. functions rhai provides that ctrsh documents).
    pub fn doc(
        &mut self,
        name: &'static str,
        signature: &'static str,
        text: &'static str,
    ) -> &mut Self {
        self.push(name, signature.into(), text)
    }

    fn push(
        &mut self,
        name: &'static str,
        signature: Cow<'static, str>,
        text: &'static str,
    ) -> &mut Self {
        self.docs.push(FnDoc {
            name,
            signature,
            domain: self.domain,
            text: text.trim_matches('\n'),
        });
        self
    }
}

/// A short, script-facing name of a Rust type (`i64` → `int`, `ImmutableString` → `string`).
fn short_type_name<T: 'static>() -> String {
    super::error::script_type(std::any::type_name::<T>()).to_string()
}
