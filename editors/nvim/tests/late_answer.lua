-- Late answers in a real Neovim, against a stub language server that answers
-- every textDocument/inlineCompletion `SLM_NVIM_DELAY` ms after it was asked,
-- with `return a + b` at the asked position, whatever happened meanwhile (as
-- an answer already on its way does). No model, no slm-lsp.
--
-- 1. `A<CR>` after `def add(a, b):`, then nothing: the late answer shows.
-- 2. `A<CR>` after `def mul(a, b):`, and `pass` typed the moment the request
--    reaches the server: its answer, for the position left behind, must not
--    change the screen.
--
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile editors/nvim/tests/late_answer.lua'
-- Environment: SLM_NVIM_FILE (holding `def add(a, b):`), SLM_NVIM_RESULT (JSON written
-- here), SLM_NVIM_INLINE ('native' | 'fallback'), SLM_NVIM_DELAY (ms, default 300).

local api = vim.api
local env = vim.env
local delay = tonumber(env.SLM_NVIM_DELAY or '') or 300
local result = { inline = env.SLM_NVIM_INLINE or 'auto', asked = {} }
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
local h = dofile(vim.fs.joinpath(here, 'harness.lua')).new(result, { poll_ms = 10 })
local on_ask -- called with each request's record as the stub receives it

--- The stub server, in process: vim.lsp.start takes a function as `cmd`.
local function stub(dispatchers)
  local closing, last_id = false, 0
  local server = {}
  function server.request(method, params, callback)
    last_id = last_id + 1
    if method == 'initialize' then
      callback(nil, { capabilities = { inlineCompletionProvider = true, textDocumentSync = 1 } })
    elseif method == 'textDocument/inlineCompletion' then
      local asked = { line = params.position.line, character = params.position.character }
      table.insert(result.asked, asked)
      if on_ask then
        on_ask(asked)
      end
      vim.defer_fn(function()
        local pos = params.position
        asked.ghost_before = h.ghost_text()
        callback(nil, { items = { { insertText = 'return a + b', range = { start = pos, ['end'] = pos } } } })
        asked.ghost_after = h.ghost_text()
        asked.answered = true
      end, delay)
    else
      callback(nil, vim.NIL)
    end
    return true, last_id
  end
  function server.notify(method)
    if method == 'exit' then
      dispatchers.on_exit(0, 15)
    end
    return true
  end
  function server.is_closing()
    return closing
  end
  function server.terminate()
    closing = true
  end
  return server
end

local function main()
  local slm = require('slm_lsp')
  slm.setup({ cmd = stub, inline = result.inline })
  result.mode = slm.inline_mode()
  vim.cmd.edit(vim.fn.fnameescape(assert(env.SLM_NVIM_FILE)))
  h.buf = api.nvim_get_current_buf()
  h.wait_for('client attached', 10000, h.client)

  -- 1. A late answer for where the cursor still is shows.
  h.feed('A<CR>', 'mt')
  result.ghost = h.wait_for('ghost text', 10000, h.ghost_text)
  h.feed('<Tab>', 'mt')
  h.wait_for('suggestion accepted', 5000, function()
    return api.nvim_buf_get_lines(h.buf, 1, 2, true)[1] == '    return a + b'
  end)
  h.feed('<Esc>', 'mt')
  h.wait_for('normal mode', 5000, function()
    return api.nvim_get_mode().mode == 'n'
  end)

  -- 2. A late answer for a position the user has typed past does not.
  api.nvim_buf_set_lines(h.buf, -1, -1, true, { '', 'def mul(a, b):' })
  local target = api.nvim_buf_line_count(h.buf) -- 0-based row of the line `A<CR>` opens
  local stale
  on_ask = function(asked)
    if asked.line == target and not stale then
      stale = asked
      h.feed('pass', 'mt') -- before the answer can be there
    end
  end
  api.nvim_win_set_cursor(0, { target, 0 })
  h.feed('A<CR>', 'mt')
  h.wait_for('the request for the new line', 10000, function()
    return stale
  end)
  h.wait_for('its answer', 10000, function()
    return stale.answered
  end)
  result.stale = stale
  result.stale_line = api.nvim_buf_get_lines(h.buf, target, target + 1, true)[1]
  h.finish(nil)
end

h.run(main, 60000)
