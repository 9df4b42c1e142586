//! The organization's MCP policy: whether agents may use MCP at all, may
//! write, and may reach production. Changed only by owners, never over MCP.

use crate::RuleViolation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpPolicy {
    pub enabled: bool,
    pub allow_production: bool,
    pub allow_write: bool,
}

impl Default for McpPolicy {
    /// What a new organization starts with: MCP on, writes on, production off.
    fn default() -> Self {
        McpPolicy {
            enabled: true,
            allow_production: false,
            allow_write: true,
        }
    }
}

impl McpPolicy {
    /// Whether a tool that reads (`writes == false`) or changes data may be
    /// used at all under this policy.
    pub fn check_tool(&self, writes: bool) -> Result<(), RuleViolation> {
        if !self.enabled {
            return Err(RuleViolation::new(
                "mcp_disabled",
                "MCP access is turned off for this organization: an owner can turn it on in the organization's MCP policy",
            ));
        }
        if writes && !self.allow_write {
            return Err(RuleViolation::new(
                "mcp_writes_disabled",
                "this organization's MCP policy allows read-only tools only: an owner can allow writes in the MCP policy",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_gates_every_tool_then_writes() {
        let on = McpPolicy::default();
        assert!(on.check_tool(false).is_ok() && on.check_tool(true).is_ok());
        let read_only = McpPolicy {
            allow_write: false,
            ..on
        };
        assert!(read_only.check_tool(false).is_ok());
        assert_eq!(
            read_only.check_tool(true).unwrap_err().code,
            "mcp_writes_disabled"
        );
        let off = McpPolicy {
            enabled: false,
            ..on
        };
        assert_eq!(off.check_tool(false).unwrap_err().code, "mcp_disabled");
        assert_eq!(off.check_tool(true).unwrap_err().code, "mcp_disabled");
    }
}
