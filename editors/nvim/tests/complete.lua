-- Drives a real Neovim through one completion, as a person would:
-- open a file, `A<CR>` after a line (the first by default), wait for the ghost text, press the
-- accept key (through the plugin's own mapping), and record what happened.
-- Nothing asks for the suggestion explicitly: it comes from the editor's automatic
-- requests, however long the model takes (bounded by SLM_NVIM_TIMEOUT).
-- Then a late answer: `A<CR>` after a new `def`, and as soon as the request for that
-- position goes out, type on; the answer that arrives for the old position must not
-- show up. Every textDocument/inlineCompletion and its answer are in result.requests.
--
-- Run with the plugin on the runtimepath, e.g.
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile editors/nvim/tests/complete.lua'
-- Environment:
--   SLM_NVIM_FILE      file to open (required)
--   SLM_NVIM_RESULT    JSON written here at the end (required)
--   SLM_NVIM_CMD       server command as a JSON list (default ["slm-lsp"])
--   SLM_NVIM_INLINE    'auto' | 'native' | 'fallback' (default 'auto')
--   SLM_NVIM_SETTINGS  server settings as a JSON object (default {})
--   SLM_NVIM_TIMEOUT   ms to wait for the server and the suggestion (default 60000)
--   SLM_NVIM_LINE      the line to open a new line below (default 1)
--   SLM_NVIM_STAY      '1': stop once the ghost text shows and keep Neovim open
--                      (for screenshots); the result file is the signal

local api = vim.api
local env = vim.env
local timeout = tonumber(env.SLM_NVIM_TIMEOUT or '') or 60000
local line = tonumber(env.SLM_NVIM_LINE or '') or 1
local result = { inline = env.SLM_NVIM_INLINE or 'auto', requests = {} }
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
local h = dofile(vim.fs.joinpath(here, 'harness.lua')).new(result, { stay = env.SLM_NVIM_STAY == '1' })
--- The slm_lsp client being observed.
local observed

--- A late answer for a position the user has left: `A<CR>` after a new `def`, and
--- the moment the request for the new line goes out, type on. Records that request.
local function type_past_a_request()
  local last = api.nvim_buf_line_count(h.buf)
  api.nvim_buf_set_lines(h.buf, last, last, true, { '', 'def mul(a, b):' })
  api.nvim_win_set_cursor(0, { last + 2, 0 })
  local target = last + 2 -- 0-based row of the new line below the `def`
  local first
  h.on_request = function(entry)
    if not first and entry.line == target then
      first = entry
      h.on_request = nil
      h.feed('pass', 'nt') -- typed before the answer can be there
    end
  end
  h.feed('A<CR>', 'nt')
  h.wait_for('request for the new line', timeout, function()
    return first
  end)
  h.wait_for('typed on past it', 5000, function()
    return vim.trim(api.nvim_buf_get_lines(h.buf, target, target + 1, true)[1]) == 'pass'
  end)
  -- Answered, or cancelled: Neovim never hands a cancelled request's ack to the handler.
  h.wait_for('the answer for the old position, or its cancellation', timeout, function()
    return first.answered_ms or observed.requests[first.id] == nil
  end)
  first.settled_ms = h.now()
  first.cancelled = first.answered_ms == nil
  h.feed('<Esc>', 'nt')
  h.wait_for('normal mode', 5000, function()
    return api.nvim_get_mode().mode == 'n'
  end)
  return first
end

local function main()
  api.nvim_create_autocmd('LspAttach', {
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client ~= nil and client.name == 'slm_lsp' and not observed then
        observed = client
        h.observe(client, result.requests)
      end
    end,
  })
  local slm = require('slm_lsp')
  slm.setup({
    cmd = vim.json.decode(env.SLM_NVIM_CMD or '["slm-lsp"]'),
    inline = result.inline,
    settings = vim.json.decode(env.SLM_NVIM_SETTINGS or '{}'),
  })
  result.mode = slm.inline_mode()
  local file = assert(env.SLM_NVIM_FILE, 'SLM_NVIM_FILE is not set')
  vim.cmd.edit(vim.fn.fnameescape(file))
  h.buf = api.nvim_get_current_buf()
  h.log('opened ' .. vim.bo[h.buf].filetype .. ' file, ghost text: ' .. result.mode)

  h.wait_for('client attached', timeout, function()
    return observed
  end)
  result.status = h.wait_for_server(timeout)

  api.nvim_win_set_cursor(0, { line, 0 })
  -- <Tab> before any suggestion can have arrived (they are asked for only after
  -- a debounce): the mapping must act as a plain <Tab>.
  h.feed('A<CR><Tab>', 'mt')
  h.wait_for('insert mode on the new line', 5000, function()
    return api.nvim_get_mode().mode == 'i' and api.nvim_win_get_cursor(0)[1] == line + 1
  end)
  result.tab_without_suggestion = api.nvim_buf_get_lines(h.buf, line, line + 1, true)[1]
  h.feed('<BS>', 'nt')
  h.wait_for('back at the indent', 5000, function()
    return api.nvim_buf_get_lines(h.buf, line, line + 1, true)[1] ~= result.tab_without_suggestion
  end)
  result.indent = api.nvim_buf_get_lines(h.buf, line, line + 1, true)[1]

  result.ghost = h.wait_for('ghost text', timeout, h.ghost_text)
  result.ghost_ms = h.now()
  for _, entry in ipairs(result.requests) do
    if entry.ghost_after and not entry.ghost_before then
      result.shown_by = entry -- the request whose answer put it on screen
    end
  end
  if env.SLM_NVIM_STAY == '1' then
    return h.finish(nil)
  end

  local before = api.nvim_buf_get_lines(h.buf, 0, -1, false)
  h.feed('<Tab>', 'mt') -- remap: goes through the plugin's insert-mode mapping
  h.wait_for('suggestion accepted', 5000, function()
    return not vim.deep_equal(before, api.nvim_buf_get_lines(h.buf, 0, -1, false))
  end)
  h.feed('<Esc>', 'nt')
  h.wait_for('normal mode', 5000, function()
    return api.nvim_get_mode().mode == 'n'
  end)
  result.accepted = api.nvim_buf_get_lines(h.buf, 0, -1, false)

  result.stale = type_past_a_request()

  -- The user commands, as typed; their answers arrive through vim.notify.
  result.messages = h.notifications()
  local first = h.client()
  for _, command in ipairs({ 'SlmToggle', 'SlmToggle', 'SlmStatus', 'SlmRestart' }) do
    local count = #result.messages
    vim.cmd(command)
    h.wait_for(':' .. command, 30000, function()
      return #result.messages > count
    end)
  end
  h.wait_for('client attached again', timeout, function()
    local client = h.client()
    return client and client.id ~= first.id and client.initialized
  end)
  result.restarted = first:is_stopped()
  h.finish(nil)
end

-- The watchdog, so a stuck run still reports and exits.
h.run(main, 3 * timeout + 30000)
