-- User commands for slm_lsp; everything else loads on require('slm_lsp').setup().
if vim.g.loaded_slm_lsp or vim.fn.has('nvim-0.11') == 0 then
  return
end
vim.g.loaded_slm_lsp = 1

local function command(name, fn, desc)
  vim.api.nvim_create_user_command(name, function()
    require('slm_lsp')[fn]()
  end, { nargs = 0, desc = desc })
end

command('SlmToggle', 'toggle', 'slm-lsp: turn completion on/off for this workspace')
command('SlmStatus', 'show_status', 'slm-lsp: model, adapter, latency, index progress')
command('SlmRestart', 'restart', 'slm-lsp: restart the language server')
