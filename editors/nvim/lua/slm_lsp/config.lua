--- slm_lsp.config: the plugin's options, every key documented beside its default.
---
--- The plugin stays thin: the language server is the contract. Everything about
--- *what* gets completed lives in the server's settings (`settings` below), which
--- are forwarded verbatim as `initializationOptions` and re-sent as
--- `workspace/didChangeConfiguration` `{ settings = { slm = ... } }`.
local M = {}

--- @class slm_lsp.Options
M.defaults = {
  -- Command that starts the server on stdio. Use an absolute path when `slm-lsp`
  -- is not on $PATH, e.g. { vim.fn.expand('~/src/slm-lsp/.venv/bin/slm-lsp') }.
  cmd = { 'slm-lsp' },

  -- Filetypes the client attaches to. The server gives language-aware completion
  -- for these; add any other filetype (e.g. 'lua', 'markdown') for plain-text
  -- completion.
  filetypes = {
    'python',
    'javascript',
    'javascriptreact',
    'typescript',
    'typescriptreact',
    'go',
    'rust',
    'java',
    'c',
    'cpp',
  },

  -- The workspace root is the nearest parent directory holding one of these.
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml', '.slm-lsp.json' },

  -- Server settings (camelCase, as the server documents them), e.g.
  -- { completion = { maxLines = 4 } }. Only what you set here is sent, so the
  -- server's own defaults (slm_lsp/config.py, the only copy) and a project's
  -- `.slm-lsp.json` still apply to every key you leave out; what you set wins
  -- over `.slm-lsp.json`. `slm-lsp config FILE` prints the settings in effect.
  settings = {},

  -- Ghost text (inline completion):
  --   'auto'     native vim.lsp.inline_completion (Neovim 0.12+), else the fallback
  --   'native'   always the native one (falls back with a warning on 0.11)
  --   'fallback' this plugin's small ghost-text client (the only one on 0.11)
  --   'off'      no ghost text; the server still answers textDocument/completion
  inline = 'auto',

  -- Fallback only: wait this long after the last keystroke before asking.
  -- (The native client has its own debounce.)
  debounce_ms = 50,

  -- Insert-mode keys, buffer-local where the client is attached; false = unmapped.
  -- `accept` inserts the shown suggestion; with none shown the key does what it
  -- did before (its previous insert-mode mapping, else the key: <Tab> indents).
  keymap = {
    accept = '<Tab>',
  },

  -- Also turn on Neovim's LSP completion menu (vim.lsp.completion) with
  -- autotrigger for this client. Off by default: <C-x><C-o> works regardless.
  lsp_completion = false,

  -- Call vim.lsp.enable('slm_lsp') from setup(), so the client starts on the
  -- filetypes above. Set false to enable it yourself.
  auto_enable = true,
}

--- The options in force (defaults until setup() runs).
--- @type slm_lsp.Options
M.options = vim.deepcopy(M.defaults)

local valid_inline = { auto = true, native = true, fallback = true, off = true }

--- Merge user options over the defaults and validate them.
--- @param opts? table
--- @return slm_lsp.Options
function M.set(opts)
  opts = opts or {}
  vim.validate('opts', opts, 'table')
  local o = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  -- Lists replace, they do not merge index by index.
  for _, key in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if opts[key] ~= nil then
      o[key] = opts[key]
    end
  end
  vim.validate('cmd', o.cmd, { 'table', 'function' })
  vim.validate('filetypes', o.filetypes, 'table')
  vim.validate('root_markers', o.root_markers, 'table')
  vim.validate('settings', o.settings, 'table')
  vim.validate('debounce_ms', o.debounce_ms, 'number')
  vim.validate('keymap', o.keymap, 'table')
  if not valid_inline[o.inline] then
    error(("slm_lsp: inline must be 'auto', 'native', 'fallback' or 'off', not %s"):format(vim.inspect(o.inline)))
  end
  M.options = o
  return o
end

--- The settings object as it goes on the wire: an empty table must be a JSON object.
--- @param settings table
--- @return table
function M.wire_settings(settings)
  if next(settings) == nil then
    return vim.empty_dict()
  end
  return vim.deepcopy(settings)
end

--- The `vim.lsp.Config` for these options.
--- @param o slm_lsp.Options
--- @return vim.lsp.Config
function M.lsp_config(o)
  local capabilities = nil
  if not (vim.lsp.inline_completion and vim.lsp.inline_completion.enable) then
    -- Neovim 0.11 does not announce inline completion; the fallback client does.
    capabilities = { textDocument = { inlineCompletion = { dynamicRegistration = false } } }
  end
  return {
    cmd = o.cmd,
    filetypes = o.filetypes,
    root_markers = o.root_markers,
    init_options = M.wire_settings(o.settings),
    settings = { slm = M.wire_settings(o.settings) },
    capabilities = capabilities,
    handlers = {
      ['slm/status'] = function(...)
        return require('slm_lsp')._on_status(...)
      end,
    },
  }
end

return M
