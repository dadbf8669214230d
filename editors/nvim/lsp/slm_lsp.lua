--- Config for `vim.lsp.enable('slm_lsp')` (Neovim 0.11+): cmd, filetypes,
--- root markers and the server settings, taken from the plugin's defaults.
--- `require('slm_lsp').setup(opts)` layers the user's options over this with
--- vim.lsp.config('slm_lsp', ...); see `:help slm_lsp-config`.
local config = require('slm_lsp.config')

return config.lsp_config(config.defaults)
