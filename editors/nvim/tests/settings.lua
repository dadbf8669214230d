-- Settings precedence in a real Neovim with the real server: what the plugin
-- sends, whether a project's `.slm-lsp.json` (or the user's setting over it)
-- decides if a file gets ghost text, and whether a `:SlmToggle` survives
-- settings changes that do not touch `completion.enable`.
--
-- For each file in SLM_NVIM_FILES: open it, `A<CR>` after line 1, and wait until
-- the newest textDocument/inlineCompletion is answered for the cursor as it is
-- (nothing newer asked, nothing typed since); record its items and the ghost text.
-- With SLM_NVIM_TOGGLE=1, then: :SlmToggle, an unrelated require('slm_lsp').configure(),
-- :SlmRestart, asking the server for its state (slm.status) after each step.
--
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile editors/nvim/tests/settings.lua'
-- Environment:
--   SLM_NVIM_FILES     JSON list of files to open (required)
--   SLM_NVIM_RESULT    JSON written here at the end (required)
--   SLM_NVIM_CMD       server command as a JSON list (default ["slm-lsp"])
--   SLM_NVIM_SETTINGS  `settings` for setup() as a JSON object; unset: none given, as a user has it
--   SLM_NVIM_TOGGLE    '1': the toggle steps after the files
--   SLM_NVIM_TIMEOUT   ms to wait for the server and each answer (default 60000)

local api = vim.api
local env = vim.env
local timeout = tonumber(env.SLM_NVIM_TIMEOUT or '') or 60000
local result = { files = {} }
local requests = {}
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
local h = dofile(vim.fs.joinpath(here, 'harness.lua')).new(result)
local client

--- The newest request, once it is answered for the cursor line and text as they are now.
local function settled()
  local last = requests[#requests]
  local row = api.nvim_win_get_cursor(0)[1] - 1
  local current = last and last.buf == h.buf and last.line == row and last.tick == api.nvim_buf_get_changedtick(h.buf)
  return current and last.answered and last
end

--- Ask the server for its state (a request: answered after every message sent before it).
local function server_state()
  local answer
  h.client():request('workspace/executeCommand', { command = 'slm.status', arguments = {} }, function(err, res)
    answer = err and { state = 'error: ' .. err.message } or res
  end, h.buf)
  return h.wait_for('slm.status', 30000, function()
    return answer
  end).state
end

local function try_file(file)
  vim.cmd.edit(vim.fn.fnameescape(file))
  h.buf = api.nvim_get_current_buf()
  h.wait_for('attached to ' .. file, timeout, h.client)
  api.nvim_win_set_cursor(0, { 1, 0 })
  h.feed('A<CR>', 'nt')
  local answer = h.wait_for('settled answer in ' .. file, timeout, settled)
  if answer.items > 0 then
    h.wait_for('ghost text', 5000, h.ghost_text)
  end
  table.insert(result.files, { file = file, items = answer.items, text = answer.text, ghost = h.ghost_text() })
  h.feed('<Esc>u', 'nt')
  h.wait_for('normal mode, undone', 5000, function()
    return api.nvim_get_mode().mode == 'n' and api.nvim_buf_line_count(h.buf) == 1
  end)
end

local function toggle_steps()
  local slm = require('slm_lsp')
  local steps = {}
  result.toggle = steps
  steps.before = server_state()
  local notified = h.notifications()
  vim.cmd('SlmToggle')
  h.wait_for(':SlmToggle', 30000, function()
    return #notified > 0
  end)
  steps.toggled = server_state()
  slm.configure({ completion = { maxLines = 4 } }) -- unrelated to enabling
  steps.after_configure = server_state()
  local first = h.client()
  vim.cmd('SlmRestart')
  h.wait_for('a new client, ready', timeout, function()
    local c = h.client()
    local s = c and c.id ~= first.id and c.initialized and slm.status(h.buf)
    return s and s.state ~= 'loading'
  end)
  steps.after_restart = server_state()
end

local function main()
  api.nvim_create_autocmd('LspAttach', {
    callback = function(args)
      local c = vim.lsp.get_client_by_id(args.data.client_id)
      if c and c.name == 'slm_lsp' and not client then
        client = c
        h.observe(c, requests)
        result.init_options = c.config.init_options
        result.settings = c.settings
      end
    end,
  })
  local slm = require('slm_lsp')
  local opts = { cmd = vim.json.decode(env.SLM_NVIM_CMD or '["slm-lsp"]') }
  if env.SLM_NVIM_SETTINGS then
    opts.settings = vim.json.decode(env.SLM_NVIM_SETTINGS)
  end
  slm.setup(opts)
  result.mode = slm.inline_mode()
  local files = vim.json.decode((assert(env.SLM_NVIM_FILES, 'SLM_NVIM_FILES is not set')))
  vim.cmd.edit(vim.fn.fnameescape(files[1]))
  h.buf = api.nvim_get_current_buf()
  h.wait_for_server(timeout)
  for _, file in ipairs(files) do
    try_file(file)
  end
  if env.SLM_NVIM_TOGGLE == '1' then
    toggle_steps()
  end
  h.finish(nil)
end

h.run(main, 4 * timeout + 30000)
