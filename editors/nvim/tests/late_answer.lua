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
local buf, co
local on_ask -- called with each request's record as the stub receives it

local function ghost_text()
  local parts = {}
  for _, mark in ipairs(api.nvim_buf_get_extmarks(buf, -1, 0, -1, { details = true })) do
    for _, chunk in ipairs(mark[4].virt_text or {}) do
      parts[#parts + 1] = chunk[1]
    end
  end
  local text = table.concat(parts)
  return vim.trim(text) ~= '' and text or nil
end

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
        asked.ghost_before = ghost_text()
        callback(nil, { items = { { insertText = 'return a + b', range = { start = pos, ['end'] = pos } } } })
        asked.ghost_after = ghost_text()
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

local function finish(err)
  if result.finished then
    return
  end
  result.finished, result.error = true, err
  result.lines = buf and api.nvim_buf_get_lines(buf, 0, -1, false)
  local f = assert(io.open(env.SLM_NVIM_RESULT, 'w'))
  f:write(vim.json.encode(result))
  f:close()
  vim.schedule(function()
    vim.cmd('qall!')
  end)
end

local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(debug.traceback(co, err))
  end
end

local function wait_for(what, ms, cond)
  local deadline = vim.uv.now() + ms
  while not cond() do
    if vim.uv.now() > deadline then
      error(('timed out after %d ms waiting for %s'):format(ms, what), 0)
    end
    vim.defer_fn(resume, 10)
    coroutine.yield()
  end
end

local function feed(keys)
  api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), 'mt', false)
end

local function main()
  local slm = require('slm_lsp')
  slm.setup({ cmd = stub, inline = result.inline })
  result.mode = slm.inline_mode()
  vim.cmd.edit(vim.fn.fnameescape(assert(env.SLM_NVIM_FILE)))
  buf = api.nvim_get_current_buf()
  wait_for('client attached', 10000, function()
    return #vim.lsp.get_clients({ bufnr = buf, name = 'slm_lsp' }) > 0
  end)

  -- 1. A late answer for where the cursor still is shows.
  feed('A<CR>')
  wait_for('ghost text', 10000, ghost_text)
  result.ghost = ghost_text()
  feed('<Tab>')
  wait_for('suggestion accepted', 5000, function()
    return api.nvim_buf_get_lines(buf, 1, 2, true)[1] == '    return a + b'
  end)
  feed('<Esc>')
  wait_for('normal mode', 5000, function()
    return api.nvim_get_mode().mode == 'n'
  end)

  -- 2. A late answer for a position the user has typed past does not.
  api.nvim_buf_set_lines(buf, -1, -1, true, { '', 'def mul(a, b):' })
  local target = api.nvim_buf_line_count(buf) -- 0-based row of the line `A<CR>` opens
  local stale
  on_ask = function(asked)
    if asked.line == target and not stale then
      stale = asked
      feed('pass') -- before the answer can be there
    end
  end
  api.nvim_win_set_cursor(0, { target, 0 })
  feed('A<CR>')
  wait_for('the request for the new line', 10000, function()
    return stale
  end)
  wait_for('its answer', 10000, function()
    return stale.answered
  end)
  result.stale = stale
  result.stale_line = api.nvim_buf_get_lines(buf, target, target + 1, true)[1]
  finish(nil)
end

co = coroutine.create(main)
vim.defer_fn(function()
  finish('watchdog: gave up')
end, 60000)
vim.schedule(resume)
