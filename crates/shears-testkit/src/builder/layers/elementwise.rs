//! Element-wise ops: activations, broadcasting binary ops (with value or scalar operands) and
//! the shape-preserving pass-throughs (Identity, Dropout, Cast).

use super::super::{attr_float, attr_int, ModelBuilder};
use super::broadcast;

impl ModelBuilder {
    /// An element-wise op of one input (shape and type preserved).
    pub fn unary(&mut self, op_type: &str, x: &str) -> String {
        let shape = self.shape_of(x).to_vec();
        self.op(op_type, &[x], vec![], shape)
    }

    /// Relu.
    pub fn relu(&mut self, x: &str) -> String {
        self.unary("Relu", x)
    }

    /// Sigmoid.
    pub fn sigmoid(&mut self, x: &str) -> String {
        self.unary("Sigmoid", x)
    }

    /// HardSwish (opset 14+).
    pub fn hardswish(&mut self, x: &str) -> String {
        assert!(self.opset >= 14, "builder: HardSwish needs opset 14+");
        self.unary("HardSwish", x)
    }

    /// Erf.
    pub fn erf(&mut self, x: &str) -> String {
        self.unary("Erf", x)
    }

    /// Tanh.
    pub fn tanh(&mut self, x: &str) -> String {
        self.unary("Tanh", x)
    }

    /// Sqrt.
    pub fn sqrt(&mut self, x: &str) -> String {
        self.unary("Sqrt", x)
    }

    /// Gelu: the `Gelu` op at opset 20+, else the Erf form PyTorch's classic exporter writes
    /// (`x * 0.5 * (1 + erf(x / sqrt 2))` as Div, Erf, Add, Mul, Mul).
    pub fn gelu(&mut self, x: &str) -> String {
        if self.opset >= 20 {
            return self.unary("Gelu", x);
        }
        let d = self.div_scalar(x, std::f32::consts::SQRT_2);
        let e = self.erf(&d);
        let a = self.add_scalar(&e, 1.0);
        let m = self.mul(x, &a);
        self.mul_scalar(&m, 0.5)
    }

    /// Clip to `[lo, hi]`: bounds as inputs at opset 11+, as attributes before.
    pub fn clip(&mut self, x: &str, lo: f32, hi: f32) -> String {
        let shape = self.shape_of(x).to_vec();
        let node = self.auto_node_name("Clip");
        if self.opset >= 11 {
            let min = self.scalar_f32(&format!("{node}_min"), lo);
            let max = self.scalar_f32(&format!("{node}_max"), hi);
            self.emit(node, "Clip", &[x, &min, &max], vec![], shape)
        } else {
            let attrs = vec![attr_float("max", hi), attr_float("min", lo)];
            self.emit(node, "Clip", &[x], attrs, shape)
        }
    }

    /// Clip to `[0, 6]` (ReLU6).
    pub fn relu6(&mut self, x: &str) -> String {
        self.clip(x, 0.0, 6.0)
    }

    /// PRelu with one slope per channel, `{name}.weight` `[C, 1, 1]` (how `nn.PReLU(C)`
    /// exports on NCHW).
    pub fn prelu(&mut self, x: &str, name: &str) -> String {
        let s = self.shape_of(x).to_vec();
        let slope = self.param_uniform(&format!("{name}.weight"), &[s[1], 1, 1], 0.05, 0.3);
        self.layer_op(name, "PRelu", &[x, &slope], vec![], s)
    }

    /// A broadcasting binary op.
    pub fn binary(&mut self, op_type: &str, a: &str, b: &str) -> String {
        let shape = broadcast(self.shape_of(a), self.shape_of(b));
        self.op(op_type, &[a, b], vec![], shape)
    }

    /// Add.
    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.binary("Add", a, b)
    }

    /// Sub.
    pub fn sub(&mut self, a: &str, b: &str) -> String {
        self.binary("Sub", a, b)
    }

    /// Mul.
    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.binary("Mul", a, b)
    }

    /// Div.
    pub fn div(&mut self, a: &str, b: &str) -> String {
        self.binary("Div", a, b)
    }

    /// Pow.
    pub fn pow(&mut self, a: &str, b: &str) -> String {
        self.binary("Pow", a, b)
    }

    /// A binary op with a scalar constant second operand (named `{node}_B`).
    pub(super) fn binary_scalar(&mut self, op_type: &str, x: &str, v: f32) -> String {
        let shape = self.shape_of(x).to_vec();
        let node = self.auto_node_name(op_type);
        let c = self.scalar_f32(&format!("{node}_B"), v);
        self.emit(node, op_type, &[x, &c], vec![], shape)
    }

    /// `x + v`.
    pub fn add_scalar(&mut self, x: &str, v: f32) -> String {
        self.binary_scalar("Add", x, v)
    }

    /// `x * v`.
    pub fn mul_scalar(&mut self, x: &str, v: f32) -> String {
        self.binary_scalar("Mul", x, v)
    }

    /// `x / v`.
    pub fn div_scalar(&mut self, x: &str, v: f32) -> String {
        self.binary_scalar("Div", x, v)
    }

    /// Identity.
    pub fn identity(&mut self, x: &str) -> String {
        self.unary("Identity", x)
    }

    /// Dropout (inference: one output, ratio left at its default).
    pub fn dropout(&mut self, x: &str) -> String {
        self.unary("Dropout", x)
    }

    /// Cast to element type `to` (a `DataType` as i32).
    pub fn cast(&mut self, x: &str, to: i32) -> String {
        let s = self.shape_of(x).to_vec();
        let out = self.op("Cast", &[x], vec![attr_int("to", i64::from(to))], s);
        self.dtypes.insert(out.clone(), to);
        out
    }
}
